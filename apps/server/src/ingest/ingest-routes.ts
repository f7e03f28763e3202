import { IncomingMessage } from "node:http";
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
import type { Context, Hono } from "hono";
import { Counter } from "prom-client";
import { ByteBudget, type ByteLease } from "../http/byte-budget.ts";
import {
  type BodyFailure,
  type BodySource,
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
const PROJECT = ":projectId{[1-9][0-9]*}";
/** `X-Sentry-Error` carries the detail, reduced to what a header may hold. */
const MAX_ERROR_HEADER_CHARS = 200;
const MAX_DETAIL_CHARS = 1024;
const CORS_ENTRIES = Object.entries(INGEST_CORS_HEADERS);

type Handler = (c: Context, deps: IngestDeps, lease: ByteLease) => Promise<Response>;

/**
 * The ingest role's routes (relay-server/src/endpoints/mod.rs):
 * `POST /api/{project_id}/envelope/` and `/api/{project_id}/store/`, the
 * legacy `POST /api/store/`, and the CORS preflight of each. Every answer
 * carries the CORS headers; errors are `{"detail": ...}` with
 * `X-Sentry-Error`; a 200 is sent only after the group commit holding the
 * request's events returned. Body bytes held by all requests together are
 * bounded by `config.maxBytesInFlight` (503 with `Retry-After` past it).
 */
export function registerIngestRoutes(app: Hono, deps: IngestDeps): void {
  const { config, metrics } = deps.services;
  const budget = new ByteBudget(config.maxBytesInFlight, (held) =>
    metrics.ingestBytesInFlight.set(held),
  );
  const corsPaths = [`/api/${PROJECT}/*`, "/api/store", "/api/store/"];
  for (const path of corsPaths) {
    app.use(path, async (c, next) => {
      // Set before the answer is built, so they are part of it rather than
      // five edits of a finished response's headers on every event.
      for (const [name, value] of CORS_ENTRIES) c.header(name, value);
      await next();
    });
    app.options(path, (c) => c.body(null, 200));
  }
  const overloaded = new Counter({
    name: "sluice_ingest_overloaded_total",
    help: "Ingest requests answered 503 before their body was read, because too many requests waited for a group commit.",
    registers: [metrics.registry],
  });
  const route = (handler: Handler) => (c: Context) => {
    // Before the key or any byte of the body: a node behind on its commits
    // sheds new work at the cheapest point, and stays ready (docs/protocol.md §5.3).
    if (deps.committer.overloaded()) {
      overloaded.inc();
      return reject(c, deps, 503, "ingest is overloaded; retry later");
    }
    return guarded(c, deps, budget, handler);
  };
  app.post(
    `/api/${PROJECT}/envelope`,
    route((c, d, lease) => handleEnvelope(c, d, lease, null)),
  );
  app.post(`/api/${PROJECT}/store`, route(handleStore));
  app.post("/api/store", route(handleStore));
}

/**
 * Runs a handler with its share of the byte budget, released when it ends.
 * A dependency failure is a 503 (the SDK retries); anything else thrown is
 * a problem with this input, where a retry cannot help: a 400.
 */
async function guarded(c: Context, deps: IngestDeps, budget: ByteBudget, handle: Handler) {
  const lease = budget.lease();
  let response: Response;
  try {
    response = await handle(c, deps, lease);
  } catch (error) {
    if (error instanceof StorageUnavailableError) {
      deps.services.log.error({ err: error.cause, path: c.req.path }, "ingest request failed");
      response = reject(c, deps, 503, "temporarily unable to store the event");
    } else {
      deps.services.log.error({ err: error, path: c.req.path }, "ingest could not read a request");
      response = reject(c, deps, 400, "invalid request");
    }
  } finally {
    lease.release();
  }
  // Answered before the body's end (a refusal): what is left of it must not
  // hold up or be read as the connection's next request, so the connection
  // ends with this answer (RFC 9112 §9.6) rather than being reused.
  const incoming = nodeRequest(c);
  if (incoming && !incoming.readableEnded) response.headers.set("Connection", "close");
  return response;
}

function reject(c: Context, deps: IngestDeps, status: ErrorStatus, detail: string): Response {
  deps.services.metrics.ingestRejections.inc({ status });
  const bounded =
    detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS)}…` : detail;
  // Details may quote client input (item types): a header takes printable ASCII only.
  c.header(
    "X-Sentry-Error",
    bounded.replace(/[^\x20-\x7e]/g, "?").slice(0, MAX_ERROR_HEADER_CHARS),
  );
  if (status === 503) c.header("Retry-After", RETRY_AFTER_SECONDS);
  return c.json({ detail: bounded }, status);
}

/**
 * Answers a request that would pass the process's bytes in flight: 503 with
 * `Retry-After`, counted in `sluice_ingest_shed_total` and, when the project
 * is known, as the outcome of `prepareShedWrites`.
 */
function shed(
  c: Context,
  deps: IngestDeps,
  key: KnownKey | null,
  category: "error" | "unknown",
  detail: string,
): Response {
  deps.services.metrics.ingestShed.inc();
  if (key) {
    // Not awaited: the answer must not wait for a commit while the process is overloaded.
    void deps.committer.submit(prepareShedWrites(key.projectId, category, Date.now()));
  }
  return reject(c, deps, 503, detail);
}

function bodyFailed(
  c: Context,
  deps: IngestDeps,
  failure: BodyFailure,
  key: KnownKey | null,
  category: "error" | "unknown",
): Response {
  if (failure.status === 503) return shed(c, deps, key, category, failure.detail);
  return reject(c, deps, failure.status, failure.detail);
}

/**
 * Checks the declared `Content-Length` before any byte is read: past
 * `maxBytes` it is a 413, past the process's room for bytes in flight a 503.
 * Nothing is reserved: bytes are taken as they arrive, so a client that
 * declares much and sends slowly holds only what it sent. A chunked body is
 * checked only while it is read.
 */
function admitBody(
  c: Context,
  deps: IngestDeps,
  lease: ByteLease,
  maxBytes: number,
  key: KnownKey | null,
  category: "error" | "unknown",
): Response | null {
  const header = c.req.header("content-length");
  if (header === undefined || !/^\d+$/.test(header.trim())) return null;
  const length = Number(header.trim());
  if (length > maxBytes) {
    return reject(c, deps, 413, `request body is larger than ${maxBytes} bytes`);
  }
  if (!lease.wouldFit(length)) {
    return shed(c, deps, key, category, SHED_DETAIL);
  }
  return null;
}

/**
 * The request's body: Node's `IncomingMessage` when served by
 * @hono/node-server (reading `c.req.raw.body` would build a web `Request`
 * and stream for every event), else the web stream (`app.request` in tests).
 */
function requestBody(c: Context): BodySource {
  return nodeRequest(c) ?? c.req.raw.body;
}

function nodeRequest(c: Context): IncomingMessage | null {
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  return incoming instanceof IncomingMessage ? incoming : null;
}

function requestAuth(c: Context): IngestAuthResult {
  return extractIngestAuth({
    header: (name) => c.req.header(name),
    query: new URL(c.req.url).searchParams,
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

function pathProject(c: Context): number | null {
  return c.req.param("projectId") ? Number(c.req.param("projectId")) : null;
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
  c: Context,
  deps: IngestDeps,
  lease: ByteLease,
  knownKey: KnownKey | null,
): Promise<Response> {
  const receivedAt = new Date();
  const pathProjectId = pathProject(c);
  let key = knownKey;
  if (!key) {
    const auth = requestAuth(c);
    if (!auth.ok && auth.status !== null) return reject(c, deps, auth.status, auth.detail);
    if (auth.ok) {
      const check = await requestKey(deps, auth.auth, pathProjectId);
      if (!check.ok) return reject(c, deps, check.status, check.detail);
      key = check.key;
    }
  }
  const { limits } = deps.services.config;
  const refused = admitBody(c, deps, lease, limits.maxEnvelopeBytes, key, "unknown");
  if (refused) return refused;
  const opened = openBody(
    requestBody(c),
    c.req.header("content-encoding"),
    limits.maxEnvelopeBytes,
    {
      lease,
    },
  );
  if (!opened.ok) return reject(c, deps, opened.status, opened.detail);
  const reader = opened.reader;
  const first = await reader.readLine(MAX_HEADER_LINE_BYTES);
  if (!first.ok) return bodyFailed(c, deps, first, key, "unknown");
  if (first.ended && first.line.length === 0) return reject(c, deps, 400, "empty envelope");
  const header = parseEnvelopeHeader(first.line);
  if (!header.ok) {
    await reader.cancel();
    return reject(c, deps, 400, header.detail);
  }
  if (!key) {
    const named = keyOfEnvelopeDsn(header.headers.dsn);
    const check = named.ok ? await requestKey(deps, named.auth, pathProjectId) : named;
    if (!check.ok) {
      await reader.cancel();
      return reject(c, deps, check.status, check.detail);
    }
    key = check.key;
  }
  const framing = new EnvelopeFramingCheck();
  const read = await reader.readAll((chunk) => framing.push(chunk));
  if (!read.ok) return bodyFailed(c, deps, read, key, "unknown");
  const parsed = parseEnvelope(read.body);
  if (!parsed.ok) return reject(c, deps, 400, parsed.detail);
  const tooLarge = checkLimits(parsed.envelope.items, limits);
  if (tooLarge) return reject(c, deps, 413, tooLarge);
  const quantities = envelopeQuantities(parsed.envelope, limits);
  const decision = quantities.size > 0 ? await checkQuotas(deps, key, quantities) : NO_DECISION;
  const ctx = { ...contextFor(deps, key, receivedAt), refused: decision.refused };
  const prepared = await prepareEnvelopeWrites(parsed.envelope, ctx);
  if (!prepared.ok) return reject(c, deps, prepared.status, prepared.detail);
  if (prepared.allRefused) {
    countItems(deps, prepared.itemOutcomes);
    return rateLimited(c, deps, decision, prepared.writes);
  }
  // A commit that fails after the attachment blobs were written leaves them
  // unreferenced, never wrong: blobs are content-addressed and shared, so
  // deleting one here could take it from a concurrent request's event.
  const failure = await commit(c, deps, prepared.writes);
  if (failure) return failure;
  countItems(deps, prepared.itemOutcomes);
  // Some items refused, the rest stored: a 200 that still tells the SDK to back off (Relay).
  if (decision.limits.length > 0) {
    c.header("X-Sentry-Rate-Limits", deps.quotas.formatHeader(decision.limits));
  }
  return c.json(prepared.eventId ? { id: prepared.eventId } : {});
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
function rateLimited(
  c: Context,
  deps: IngestDeps,
  decision: QuotaDecision,
  writes: IngestBatch,
): Response {
  if (writes.outcomes.length > 0)
    void deps.committer.submit({ ...writes, events: [], attachments: [] });
  const retryAfter = decision.limits.reduce((m, l) => Math.max(m, l.retryAfterSeconds), 0);
  c.header("Retry-After", String(Math.max(1, retryAfter)));
  c.header("X-Sentry-Rate-Limits", deps.quotas.formatHeader(decision.limits));
  return reject(c, deps, 429, RATE_LIMITED_DETAIL);
}

async function handleStore(c: Context, deps: IngestDeps, lease: ByteLease): Promise<Response> {
  const receivedAt = new Date();
  const auth = requestAuth(c);
  if (!auth.ok)
    return reject(
      c,
      deps,
      auth.status ?? 401,
      auth.status ? auth.detail : "missing authorization information",
    );
  const check = await requestKey(deps, auth.auth, pathProject(c));
  if (!check.ok) return reject(c, deps, check.status, check.detail);
  if (c.req.header("content-type")?.startsWith("application/x-sentry-envelope")) {
    return handleEnvelope(c, deps, lease, check.key);
  }
  const { limits } = deps.services.config;
  const refused = admitBody(c, deps, lease, limits.maxEventBytes, check.key, "error");
  if (refused) return refused;
  const read = await readBody(
    requestBody(c),
    c.req.header("content-encoding"),
    limits.maxEventBytes,
    {
      lease,
    },
  );
  if (!read.ok) return bodyFailed(c, deps, read, check.key, "error");

  let body = read.body;
  const first = body.find((byte) => byte > 0x20);
  if (first !== undefined && first !== 0x7b) {
    const legacy = await decodeLegacyStoreBody(body, limits.maxEventBytes);
    if (!legacy.ok) return reject(c, deps, legacy.status, legacy.detail);
    body = legacy.body;
  }
  const decision = await checkQuotas(deps, check.key, new Map([[storeBodyCategory(body), 1]]));
  const ctx = { ...contextFor(deps, check.key, receivedAt), refused: decision.refused };
  const prepared = prepareStoreWrites(body, ctx);
  if (!prepared.ok) return reject(c, deps, prepared.status, prepared.detail);
  if (prepared.refused) {
    deps.services.metrics.ingestItems.inc({
      item_type: prepared.itemType,
      outcome: "rate_limited",
    });
    return rateLimited(c, deps, decision, prepared.writes);
  }
  const failure = await commit(c, deps, prepared.writes);
  if (failure) return failure;
  deps.services.metrics.ingestItems.inc({ item_type: prepared.itemType, outcome: "accepted" });
  return c.json({ id: prepared.eventId });
}

async function commit(c: Context, deps: IngestDeps, writes: IngestBatch): Promise<Response | null> {
  if (
    writes.events.length === 0 &&
    writes.attachments.length === 0 &&
    writes.outcomes.length === 0
  ) {
    return null;
  }
  const result = await deps.committer.submit(writes);
  if (result.ok) return null;
  return reject(c, deps, result.kind === "invalid" ? 400 : 503, result.detail);
}
