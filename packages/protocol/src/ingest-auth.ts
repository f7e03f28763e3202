/** Credentials an SDK sent with an ingest request. */
export type IngestAuth = { publicKey: string; version: number; client: string | null };

export type IngestAuthResult =
  | { ok: true; auth: IngestAuth }
  | { ok: false; status: 400 | 401; detail: string }
  | { ok: false; status: null };

export type AuthSources = {
  /** Reads one request header by lower-case name. */
  header(name: string): string | undefined;
  /** The request's query parameters. */
  query: URLSearchParams;
};

/**
 * Finds the DSN key of an ingest request in `X-Sentry-Auth`, `Authorization:
 * Sentry`, `Authorization: Basic` or the `sentry_*` query parameters, in
 * Relay's order (relay-server/src/extractors/request_meta.rs `auth_from_parts`,
 * docs/protocol.md §1.2). More than one source is a 401; none is
 * `{ ok: false, status: null }` so the envelope endpoint can fall back to the
 * envelope header `dsn`. A `sentry_version` above 7 is a 400.
 */
export function extractIngestAuth(sources: AuthSources): IngestAuthResult {
  const found: Record<string, string>[] = [];
  const xSentryAuth = sources.header("x-sentry-auth");
  if (xSentryAuth !== undefined) {
    const parsed = parseSentryAuthHeader(xSentryAuth);
    if (!parsed) return { ok: false, status: 401, detail: "invalid X-Sentry-Auth header" };
    found.push(parsed);
  }
  const authorization = sources.header("authorization");
  if (authorization !== undefined) {
    const parsed = parseSentryAuthHeader(authorization) ?? parseBasicAuth(authorization);
    if (parsed) found.push(parsed);
  }
  const fromQuery: Record<string, string> = {};
  for (const [key, value] of sources.query) {
    if (key.startsWith("sentry_")) fromQuery[key] = value;
  }
  if (Object.keys(fromQuery).length > 0) found.push(fromQuery);

  if (found.length === 0) return { ok: false, status: null };
  if (found.length > 1)
    return { ok: false, status: 401, detail: "multiple authorization payloads" };
  return authFromPairs(found[0] as Record<string, string>, sources.header("user-agent"));
}

/**
 * True when `key` can be a DSN public key: 32 hex characters, as Sentry
 * issues them (Relay's `ProjectKey::parse` in relay-base-schema/src/project.rs
 * refuses anything but 32 characters). Checked before any lookup, so that
 * junk keys cost neither a query nor a cache entry.
 */
export function isPublicKey(key: string): boolean {
  return key.length === 32 && PUBLIC_KEY.test(key);
}

const PUBLIC_KEY = /^[0-9a-fA-F]{32}$/;

/** Builds credentials from `sentry_*` pairs, as found in any source. */
export function authFromPairs(
  pairs: Record<string, string>,
  userAgent: string | undefined,
): IngestAuthResult {
  const publicKey = pairs.sentry_key?.split(".")[0]?.trim();
  if (!publicKey) return { ok: false, status: 401, detail: "missing sentry_key" };
  const version =
    pairs.sentry_version === undefined ? 7 : Number.parseInt(pairs.sentry_version, 10);
  if (!Number.isFinite(version))
    return { ok: false, status: 400, detail: "invalid sentry_version" };
  if (version > 7) return { ok: false, status: 400, detail: "unsupported protocol version" };
  return {
    ok: true,
    auth: { publicKey, version, client: pairs.sentry_client ?? userAgent ?? null },
  };
}

function parseSentryAuthHeader(value: string): Record<string, string> | null {
  const trimmed = value.trim();
  if (trimmed.slice(0, 7).toLowerCase() !== "sentry ") return null;
  const pairs: Record<string, string> = {};
  for (const part of trimmed.slice(7).split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const normalized = key.startsWith("sentry_") ? key : `sentry_${key}`;
    pairs[normalized] = part.slice(eq + 1).trim();
  }
  return pairs;
}

function parseBasicAuth(value: string): Record<string, string> | null {
  const trimmed = value.trim();
  if (trimmed.slice(0, 6).toLowerCase() !== "basic ") return null;
  const decoded = Buffer.from(trimmed.slice(6).trim(), "base64").toString("utf8");
  const key = decoded.split(":")[0];
  return key ? { sentry_key: key } : null;
}
