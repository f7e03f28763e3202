import { findProjectKey, type Orm } from "@sluice/db";

export type KnownKey = { keyId: number; projectId: number; isActive: boolean };

/** How long a key lookup is trusted: a disabled key stops working within this. */
const TTL_MS = 10_000;
const MAX_ENTRIES = 50_000;

/**
 * DSN key lookups with a short in-memory cache, so ingest does not query the
 * database per request. Unknown keys are cached too (as null), so a flood of
 * bad keys costs one query per key per TTL.
 */
export function createKeyCache(orm: Orm) {
  const entries = new Map<string, { key: KnownKey | null; expiresAt: number }>();
  return {
    async lookup(publicKey: string): Promise<KnownKey | null> {
      const now = Date.now();
      const cached = entries.get(publicKey);
      if (cached && cached.expiresAt > now) return cached.key;
      const row = await findProjectKey(orm, publicKey);
      const key = row ? { keyId: row.id, projectId: row.projectId, isActive: row.isActive } : null;
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
      entries.set(publicKey, { key, expiresAt: now + TTL_MS });
      return key;
    },
  };
}

export type KeyCache = ReturnType<typeof createKeyCache>;
