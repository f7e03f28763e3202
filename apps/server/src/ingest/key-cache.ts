import { findProjectKey, type Orm } from "@sluice/db";
import { isPublicKey } from "@sluice/protocol";
import { LRUCache } from "lru-cache";
import type { KeyRateLimit } from "../quota-gate.ts";

export type KnownKey = {
  keyId: number;
  projectId: number;
  isActive: boolean;
  /** Sentry's key rate limit (events per window seconds), null when none is set. */
  rateLimit: KeyRateLimit | null;
};

/** How long a key lookup is trusted: a disabled key stops working within this. */
const TTL_MS = 10_000;

export type KeyCacheOptions = {
  /** Lookups kept, known and unknown keys alike (SLUICE_KEY_CACHE_ENTRIES). */
  maxEntries?: number;
};

/** How a lookup was answered: from the cache, by a query, or refused as not a key at all. */
export type KeyLookupResult = "hit" | "miss" | "invalid";

/** A key lookup: the key (null when unknown) and how it was answered. */
export type KeyLookup = { key: KnownKey | null; result: KeyLookupResult };

/**
 * DSN key lookups with a short in-memory cache, so ingest does not query the
 * database per request. Unknown keys are cached too (as null), so a flood of
 * bad keys costs one query per key per TTL, and the cache is a bounded LRU,
 * so it cannot grow past `maxEntries`. A string that is not 32 hex
 * characters is answered null before the cache or the database sees it.
 */
export function createKeyCache(orm: Orm, options: KeyCacheOptions = {}) {
  const entries = new LRUCache<string, { key: KnownKey | null }>({
    max: options.maxEntries ?? 10_000,
    ttl: TTL_MS,
    ttlAutopurge: false,
  });
  async function find(publicKey: string): Promise<KeyLookup> {
    if (!isPublicKey(publicKey)) return { key: null, result: "invalid" };
    const cached = entries.get(publicKey);
    if (cached) return { key: cached.key, result: "hit" };
    const row = await findProjectKey(orm, publicKey);
    const key = row
      ? {
          keyId: row.id,
          projectId: row.projectId,
          isActive: row.isActive,
          rateLimit:
            row.rateLimitCount !== null && row.rateLimitWindow !== null
              ? { count: row.rateLimitCount, window: row.rateLimitWindow }
              : null,
        }
      : null;
    entries.set(publicKey, { key });
    return { key, result: "miss" };
  }
  return {
    /** The key and how it was found (for the `sluice_ingest_key_lookups_total` metric). */
    find,
    async lookup(publicKey: string): Promise<KnownKey | null> {
      return (await find(publicKey)).key;
    },
    /** Lookups held right now. */
    size(): number {
      return entries.size;
    },
  };
}

export type KeyCache = ReturnType<typeof createKeyCache>;
