import { authFromPairs, type IngestAuth, parseDsn } from "@sluice/protocol";
import type { KeyLookup, KeyLookupResult, KnownKey } from "./key-cache.ts";
import { unavailableOnThrow } from "./prepare-writes.ts";

/** Why a request's key is refused: 401 for no usable key, 403 for a key that may not send here. */
export type KeyRefusal = { ok: false; status: 401 | 403; detail: string };

export type KeyCheck = { ok: true; key: KnownKey } | KeyRefusal;

/** What `checkKey` looks keys up in (the key cache). */
export type KeyFinder = { find(publicKey: string): Promise<KeyLookup> };

/** Where `checkKey` counts how each lookup was answered (`sluice_ingest_key_lookups_total`). */
export type KeyLookupCounter = { inc(labels: { result: KeyLookupResult }): void };

/**
 * Whether a looked-up key may send to the project in the path (null for
 * the legacy `/api/store/`, which names none): a string that is not a key
 * or an unknown key is a 401, a disabled key or another project's key a 403.
 */
export function judgeKey(lookup: KeyLookup, pathProjectId: number | null): KeyCheck {
  const { key, result } = lookup;
  if (result === "invalid") return { ok: false, status: 401, detail: "invalid DSN key" };
  if (!key) return { ok: false, status: 401, detail: "unknown DSN key" };
  if (!key.isActive) return { ok: false, status: 403, detail: "DSN key is disabled" };
  if (pathProjectId !== null && key.projectId !== pathProjectId) {
    return {
      ok: false,
      status: 403,
      detail: `DSN key does not belong to project ${pathProjectId}`,
    };
  }
  return { ok: true, key };
}

/**
 * Looks the request's key up, counts the lookup, and judges it
 * (`judgeKey`). Throws `StorageUnavailableError` when the lookup fails
 * (the database is unreachable): ingest answers 503.
 */
export async function checkKey(
  keys: KeyFinder,
  lookups: KeyLookupCounter,
  auth: IngestAuth,
  pathProjectId: number | null,
): Promise<KeyCheck> {
  const lookup = await unavailableOnThrow(() => keys.find(auth.publicKey));
  lookups.inc({ result: lookup.result });
  return judgeKey(lookup, pathProjectId);
}

/**
 * The key named by an envelope header's `dsn` (the envelope's own
 * authentication when the request carries none; develop.sentry.dev
 * sdk/foundations/transport/envelopes): a 401 "missing" when the
 * header has no `dsn`, "invalid" when it is not a DSN with a public key.
 */
export function keyOfEnvelopeDsn(dsn: unknown): { ok: true; auth: IngestAuth } | KeyRefusal {
  const parsed = typeof dsn === "string" ? parseDsn(dsn) : null;
  const auth = parsed ? authFromPairs({ sentry_key: parsed.publicKey }, undefined) : null;
  if (auth?.ok) return auth;
  return {
    ok: false,
    status: 401,
    detail: dsn ? "invalid dsn in envelope header" : "missing authorization information",
  };
}
