import type { IngestBatch, PayloadStorage } from "@sluice/db";
import {
  EnvelopeFramingCheck,
  extractIngestAuth,
  type IngestAuth,
  type IngestAuthResult,
  MAX_HEADER_LINE_BYTES,
  parseEnvelope,
  parseEnvelopeHeader,
} from "@sluice/protocol";
import { Counter } from "prom-client";
import { ByteBudget, type ByteLease } from "../http/byte-budget.ts";
import type {
  DirectAnswer,
  DirectRequest,
  DirectRoute,
  DirectRoutes,
} from "../http/direct-routes.ts";
import {
  type BodyFailure,
  decodeLegacyStoreBody,
  openBody,
  readBody,
  SHED_DETAIL,
} from "../http/read-body.ts";
import type { QuotaDecision, QuotaGate } from "../quota-gate.ts";
import type { Services } from "../services.ts";
import { checkKey, keyOfEnvelopeDsn } from "./authenticate-key.ts";
import { INGEST_CORS_HEADERS } from "./cors.ts";
import type { GroupCommitter } from "./group-committer.ts";
import type { KeyCache, KnownKey } from "./key-cache.ts";
import {
  checkLimits,
  envelopeQuantities,
  type IngestContext,
  prepareEnvelopeWrites,
  prepareShedWrites,
  prepareStoreWrites,
  StorageUnavailableError,
  storeBodyCategory,
} from "./prepare-writes.ts";

export type IngestDeps = {
  services: Services;
  keys: KeyCache;
  committer: GroupCommitter;
  quotas: QuotaGate;
  /** How to store payloads now (`createPayloadStorageGuard`). */
  payloadStorage: () => PayloadStorage;
};

type ErrorStatus = 400 | 401 | 403 | 413 | 415 | 429 | 503;

/** Relay's detail for a 429 (`BadStoreRequest::RateLimited`, relay-server/src/endpoints/common.rs). */
const RATE_LIMITED_DETAIL =
  "Sentry dropped data due to a quota or internal rate limit being reached. This will not affect your application.";
const NO_DECISION: QuotaDecision = { refused: new Map(), limits: [] };

/** Seconds a client should wait after a 503 (Relay caps what it advertises at 300 s). */
const RETRY_AFTER_SECONDS = "5";
const DAY_MS = 86_400_000;
/** `X-Sentry-Error` carries the detail, reduced to what a header may hold. */
const MAX_ERROR_HEADER_CHARS = 200;
const MAX_DETAIL_CHARS = 1024;

/** The metrics labels of the routes, the patterns they had as Hono routes. */
const PROJECT = ":projectId{[1-9][0-9]*}";
const PATTERNS = {
  envelope: `/api/${PROJECT}/envelope`,
  store: `/api/${PROJECT}/store`,
  legacyStore: "/api/store",
  preflight: `/api/${PROJECT}/*`,
} as const;
/** `/api/{project_id}/{endpoint}`, with or without the trailing slash (Sentry's SDKs send it). */
const PROJECT_PATH = /^\/api\/([1-9][0-9]{0,15})\/([a-z_]+)\/?$/;
const PROJECT_PREFIX = /^\/api\/[1-9][0-9]{0,15}\//;
const LEGACY_STORE_PATH = /^\/api\/store\/?$/;

/** One ingest request: Node's request, and the project of its path (null on `/api/store/`). */
type IngestRequest = DirectRequest & { projectId: number | null };
type Handler = (req: IngestRequest, deps: IngestDeps, lease: ByteLease) => Promise<DirectAnswer>;

/**
 * The ingest role's routes (relay-server/src/endpoints/mod.rs):
 * `POST /api/{project_id}/envelope/` and `/api/{project_id}/store/`, the
 * legacy `POST /api/store/`, and the CORS preflight of each, served
 * straight from Node's HTTP server (`DirectRoutes`). Every answer carries
 * the CORS headers; errors are `{"detail": ...}` with `X-Sentry-Error`; a
 * 200 is sent only after the group commit holding the request's events
 * returned. Body bytes held by all requests together are bounded by
 * `config.maxBytesInFlight` (503 with `Retry-After` past it).
 */
export function ingestRoutes(deps: IngestDeps): DirectRoutes {
  const { config, metrics } = deps.services;
  const budget = new ByteBudget(config.maxBytesInFlight, (held) =>
    metrics.ingestBytesInFlight.set(held),
  );
  const overloaded = new Counter({
    name: "sluice_ingest_overloaded_total",
    help: "Ingest requests answered 503 before their body was read, because too many requests waited for a group commit.",
    registers: [metrics.registry],
  });
  const serve =
    (handler: Handler, projectId: number | null) =>
    (request: DirectRequest): Promise<DirectAnswer> => {
      // Before the key or any byte of the body: a node behind on its commits
      // sheds new work at the cheapest point, and stays ready (docs/protocol.md §5.3).
      if (deps.committer.overloaded()) {
        overloaded.inc();
        return Promise.resolve(reject(deps, 503, "ingest is overloaded; retry later"));
      }
      return guarded({ ...request, projectId }, deps, budget, handler);
    };
  const preflight: DirectRoute = {
    pattern: PATTERNS.preflight,
    handle: () => Promise.resolve({ status: 200, headers: { ...INGEST_CORS_HEADERS }, body: null }),
  };
  const envelope: Handler = (req, d, lease) => handleEnvelope(req, d, lease, null);
  return (method, path) => {
    if (method === "OPTIONS") {
      if (PROJECT_PREFIX.test(path)) return preflight;
      return LEGACY_STORE_PATH.test(path) ? { ...preflight, pattern: PATTERNS.legacyStore } : null;
    }
    if (method !== "POST") return null;
    if (LEGACY_STORE_PATH.test(path)) {
      return { pattern: PATTERNS.legacyStore, handle: serve(handleStore, null) };
    }
    const match = PROJECT_PATH.exec(path);
    if (!match) return null;
    const projectId = Number(match[1]);
    if (match[2] === "envelope")
      return { pattern: PATTERNS.envelope, handle: serve(envelope, projectId) };
    if (match[2] === "store")
      return { pattern: PATTERNS.store, handle: serve(handleStore, projectId) };
    return null;
  };
}

/**
 * Runs a handler with its share of the byte budget, released when it ends.
 * A dependency failure is a 503 (the SDK retries); anything else thrown is
 * a problem with this input, where a retry cannot help: a 400.
 */
async function guarded(req: IngestRequest, deps: IngestDeps, budget: ByteBudget, handle: Handler) {
  const lease = budget.lease();
  try {
    return await handle(req, deps, lease);
  } catch (error) {
    if (error instanceof StorageUnavailableError) {
      deps.services.log.error({ err: error.cause, path: req.path }, "ingest request failed");
      return reject(deps, 503, "temporarily unable to store the event");
    }
    deps.services.log.error({ err: error, path: req.path }, "ingest could not read a request");
    return reject(deps, 400, "invalid request");
  } finally {
    lease.release();
  }
}

/** A JSON answer with the CORS headers and `extra`. */
function json(status: number, value: unknown, extra?: Record<string, string>): DirectAnswer {
  return {
    status,
    headers: { ...INGEST_CORS_HEADERS, "Content-Type": "application/json", ...extra },
    body: JSON.stringify(value),
  };
}

function reject(
  deps: IngestDeps,
  status: ErrorStatus,
  detail: string,
  extra?: Record<string, string>,
): DirectAnswer {
  deps.services.metrics.ingestRejections.inc({ status });
  const bounded =
    detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS)}…` : detail;
  const headers: Record<string, string> = {
    ...extra,
    // Details may quote client input (item types): a header takes printable ASCII only.
    "X-Sentry-Error": bounded.replace(/[^\x20-\x7e]/g, "?").slice(0, MAX_ERROR_HEADER_CHARS),
  };
  if (status === 503) headers["Retry-After"] = RETRY_AFTER_SECONDS;
  return json(status, { detail: bounded }, headers);
}

/**
 * Answers a request that would pass the process's bytes in flight: 503 with
 * `Retry-After`, counted in `sluice_ingest_shed_total` and, when the project
 * is known, as the outcome of `prepareShedWrites`.
 */
function shed(
  deps: IngestDeps,
  key: KnownKey | null,
  category: "error" | "unknown",
  detail: string,
): DirectAnswer {
  deps.services.metrics.ingestShed.inc();
  if (key) {
    // Not awaited: the answer must not wait for a commit while the process is overloaded.
    void deps.committer.submit(prepareShedWrites(key.projectId, category, Date.now()));
  }
  return reject(deps, 503, detail);
}

function bodyFailed(
  deps: IngestDeps,
  failure: BodyFailure,
  key: KnownKey | null,
  category: "error" | "unknown",
): DirectAnswer {
  if (failure.status === 503) return shed(deps, key, category, failure.detail);
  return reject(deps, failure.status, failure.detail);
}

/**
 * Checks the declared `Content-Length` before any byte is read: past
 * `maxBytes` it is a 413, past the process's room for bytes in flight a 503.
 * Nothing is reserved: bytes are taken as they arrive, so a client that
 * declares much and sends slowly holds only what it sent. A chunked body is
 * checked only while it is read.
 */
function admitBody(
  req: IngestRequest,
  deps: IngestDeps,
  lease: ByteLease,
  maxBytes: number,
  key: KnownKey | null,
  category: "error" | "unknown",
): DirectAnswer | null {
  const header = headerOf(req, "content-length");
  if (header === undefined || !/^\d+$/.test(header.trim())) return null;
  const length = Number(header.trim());
  if (length > maxBytes) {
    return reject(deps, 413, `request body is larger than ${maxBytes} bytes`);
  }
  if (!lease.wouldFit(length)) {
    return shed(deps, key, category, SHED_DETAIL);
  }
  return null;
}

/** A request header (lowercase name); repeated headers joined as Node joins them. */
function headerOf(req: IngestRequest, name: string): string | undefined {
  const value = req.incoming.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

function requestAuth(req: IngestRequest): IngestAuthResult {
  return extractIngestAuth({
    header: (name) => headerOf(req, name),
    query: new URLSearchParams(req.query),
  });
}

function requestKey(deps: IngestDeps, auth: IngestAuth, pathProjectId: number | null) {
  return checkKey(deps.keys, deps.services.metrics.keyCacheLookups, auth, pathProjectId);
}

function contextFor(deps: IngestDeps, key: KnownKey, receivedAt: Date): IngestContext {
  const { config, blobs } = deps.services;
  return {
    projectId: key.projectId,
    keyId: key.keyId,
    receivedAt,
    limits: config.limits,
    maxEventAgeMs: config.retentionDays * DAY_MS,
    blobs,
    payloadStorage: deps.payloadStorage(),
  };
}

/**
 * The envelope endpoint. The key comes from the request (header or query),
 * checked before any byte of the body is read, or else from the envelope
 * header's `dsn`: then only the first line is decoded (at most
 * `MAX_HEADER_LINE_BYTES`) before the key is checked, so an unauthenticated
 * body is never decompressed whole. The framing is checked as the rest is
 * decoded, so a malformed item header stops the decoding at once.
 */
async function handleEnvelope(
  req: IngestRequest,
  deps: IngestDeps,
  lease: ByteLease,
  knownKey: KnownKey | null,
): Promise<DirectAnswer> {
  const receivedAt = new Date();
  const pathProjectId = req.projectId;
  let key = knownKey;
  if (!key) {
    const auth = requestAuth(req);
    if (!auth.ok && auth.status !== null) return reject(deps, auth.status, auth.detail);
    if (auth.ok) {
      const check = await requestKey(deps, auth.auth, pathProjectId);
      if (!check.ok) return reject(deps, check.status, check.detail);
      key = check.key;
    }
  }
  const { limits } = deps.services.config;
  const refused = admitBody(req, deps, lease, limits.maxEnvelopeBytes, key, "unknown");
  if (refused) return refused;
  const opened = openBody(
    req.incoming,
    headerOf(req, "content-encoding"),
    limits.maxEnvelopeBytes,
    {
      lease,
    },
  );
  if (!opened.ok) return reject(deps, opened.status, opened.detail);
  const reader = opened.reader;
  const first = await reader.readLine(MAX_HEADER_LINE_BYTES);
  if (!first.ok) return bodyFailed(deps, first, key, "unknown");
  if (first.ended && first.line.length === 0) return reject(deps, 400, "empty envelope");
  const header = parseEnvelopeHeader(first.line);
  if (!header.ok) {
    await reader.cancel();
    return reject(deps, 400, header.detail);
  }
  if (!key) {
    const named = keyOfEnvelopeDsn(header.headers.dsn);
    const check = named.ok ? await requestKey(deps, named.auth, pathProjectId) : named;
    if (!check.ok) {
      await reader.cancel();
      return reject(deps, check.status, check.detail);
    }
    key = check.key;
  }
  const framing = new EnvelopeFramingCheck();
  const read = await reader.readAll((chunk) => framing.push(chunk));
  if (!read.ok) return bodyFailed(deps, read, key, "unknown");
  const parsed = parseEnvelope(read.body);
  if (!parsed.ok) return reject(deps, 400, parsed.detail);
  const tooLarge = checkLimits(parsed.envelope.items, limits);
  if (tooLarge) return reject(deps, 413, tooLarge);
  const quantities = envelopeQuantities(parsed.envelope, limits);
  const decision = quantities.size > 0 ? await checkQuotas(deps, key, quantities) : NO_DECISION;
  const ctx = { ...contextFor(deps, key, receivedAt), refused: decision.refused };
  const prepared = await prepareEnvelopeWrites(parsed.envelope, ctx);
  if (!prepared.ok) return reject(deps, prepared.status, prepared.detail);
  if (prepared.allRefused) {
    countItems(deps, prepared.itemOutcomes);
    return rateLimited(deps, decision, prepared.writes);
  }
  // A commit that fails after the attachment blobs were written leaves them
  // unreferenced, never wrong: blobs are content-addressed and shared, so
  // deleting one here could take it from a concurrent request's event.
  const failure = await commit(deps, prepared.writes);
  if (failure) return failure;
  countItems(deps, prepared.itemOutcomes);
  // Some items refused, the rest stored: a 200 that still tells the SDK to back off (Relay).
  const limited =
    decision.limits.length > 0
      ? { "X-Sentry-Rate-Limits": deps.quotas.formatHeader(decision.limits) }
      : undefined;
  return json(200, prepared.eventId ? { id: prepared.eventId } : {}, limited);
}

function countItems(deps: IngestDeps, itemOutcomes: [string, string][]) {
  for (const [type, outcome] of itemOutcomes) {
    deps.services.metrics.ingestItems.inc({ item_type: type, outcome });
  }
}

function checkQuotas(deps: IngestDeps, key: KnownKey, quantities: Map<string, number>) {
  return deps.quotas.check(
    { projectId: key.projectId, keyId: key.keyId, keyRateLimit: key.rateLimit },
    quantities,
  );
}

/**
 * The 429 of a request whose every item a limit refused: `Retry-After` the
 * longest limit and `X-Sentry-Rate-Limits` all of them (Relay
 * `BadStoreRequest::RateLimited`, relay-server/src/endpoints/common.rs).
 * Its `rate_limited` outcomes are submitted without waiting: bookkeeping
 * must not make refused traffic cost a commit's latency.
 */
function rateLimited(deps: IngestDeps, decision: QuotaDecision, writes: IngestBatch): DirectAnswer {
  if (writes.outcomes.length > 0)
    void deps.committer.submit({ ...writes, events: [], attachments: [] });
  const retryAfter = decision.limits.reduce((m, l) => Math.max(m, l.retryAfterSeconds), 0);
  return reject(deps, 429, RATE_LIMITED_DETAIL, {
    "Retry-After": String(Math.max(1, retryAfter)),
    "X-Sentry-Rate-Limits": deps.quotas.formatHeader(decision.limits),
  });
}

async function handleStore(
  req: IngestRequest,
  deps: IngestDeps,
  lease: ByteLease,
): Promise<DirectAnswer> {
  const receivedAt = new Date();
  const auth = requestAuth(req);
  if (!auth.ok)
    return reject(
      deps,
      auth.status ?? 401,
      auth.status ? auth.detail : "missing authorization information",
    );
  const check = await requestKey(deps, auth.auth, req.projectId);
  if (!check.ok) return reject(deps, check.status, check.detail);
  if (headerOf(req, "content-type")?.startsWith("application/x-sentry-envelope")) {
    return handleEnvelope(req, deps, lease, check.key);
  }
  const { limits } = deps.services.config;
  const refused = admitBody(req, deps, lease, limits.maxEventBytes, check.key, "error");
  if (refused) return refused;
  const read = await readBody(
    req.incoming,
    headerOf(req, "content-encoding"),
    limits.maxEventBytes,
    {
      lease,
    },
  );
  if (!read.ok) return bodyFailed(deps, read, check.key, "error");

  let body = read.body;
  const first = body.find((byte) => byte > 0x20);
  if (first !== undefined && first !== 0x7b) {
    const legacy = await decodeLegacyStoreBody(body, limits.maxEventBytes);
    if (!legacy.ok) return reject(deps, legacy.status, legacy.detail);
    body = legacy.body;
  }
  const decision = await checkQuotas(deps, check.key, new Map([[storeBodyCategory(body), 1]]));
  const ctx = { ...contextFor(deps, check.key, receivedAt), refused: decision.refused };
  const prepared = prepareStoreWrites(body, ctx);
  if (!prepared.ok) return reject(deps, prepared.status, prepared.detail);
  if (prepared.refused) {
    deps.services.metrics.ingestItems.inc({
      item_type: prepared.itemType,
      outcome: "rate_limited",
    });
    return rateLimited(deps, decision, prepared.writes);
  }
  const failure = await commit(deps, prepared.writes);
  if (failure) return failure;
  deps.services.metrics.ingestItems.inc({ item_type: prepared.itemType, outcome: "accepted" });
  return json(200, { id: prepared.eventId });
}

async function commit(deps: IngestDeps, writes: IngestBatch): Promise<DirectAnswer | null> {
  if (
    writes.events.length === 0 &&
    writes.attachments.length === 0 &&
    writes.outcomes.length === 0
  ) {
    return null;
  }
  const result = await deps.committer.submit(writes);
  if (result.ok) return null;
  return reject(deps, result.kind === "invalid" ? 400 : 503, result.detail);
}
