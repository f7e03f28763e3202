import type { IngestBatch } from "@sluice/db";
import {
  authFromPairs,
  extractIngestAuth,
  type IngestAuth,
  type IngestAuthResult,
  parseDsn,
  parseEnvelope,
} from "@sluice/protocol";
import type { Context, Hono } from "hono";
import type { Services } from "../services.ts";
import { INGEST_CORS_HEADERS } from "./cors.ts";
import type { GroupCommitter } from "./group-committer.ts";
import type { KeyCache, KnownKey } from "./key-cache.ts";
import { type IngestContext, parseEventItem, prepareEnvelopeWrites } from "./prepare-writes.ts";
import { decodeLegacyStoreBody, readBody } from "./read-body.ts";

export type IngestDeps = { services: Services; keys: KeyCache; committer: GroupCommitter };

type ErrorStatus = 400 | 401 | 403 | 413 | 415 | 503;

/** Seconds a client should wait after a 503 (Relay caps what it advertises at 300 s). */
const RETRY_AFTER_SECONDS = "5";
const DAY_MS = 86_400_000;
const PROJECT = ":projectId{[1-9][0-9]*}";

/**
 * The ingest role's routes (relay-server/src/endpoints/mod.rs,
 * SENTRY_PROTOCOL.md §2): `POST /api/{project_id}/envelope/` and
 * `/api/{project_id}/store/`, the legacy `POST /api/store/`, and the CORS
 * preflight of each. Every answer carries the CORS headers; errors are
 * `{"detail": ...}` with `X-Sentry-Error`; a 200 is sent only after the
 * group commit holding the request's events returned.
 */
export function registerIngestRoutes(app: Hono, deps: IngestDeps): void {
  const corsPaths = [`/api/${PROJECT}/*`, "/api/store", "/api/store/"];
  for (const path of corsPaths) {
    app.use(path, async (c, next) => {
      await next();
      for (const [name, value] of Object.entries(INGEST_CORS_HEADERS))
        c.res.headers.set(name, value);
    });
    app.options(path, (c) => c.body(null, 200));
  }
  app.post(`/api/${PROJECT}/envelope`, (c) => guarded(c, deps, () => handleEnvelope(c, deps)));
  app.post(`/api/${PROJECT}/store`, (c) => guarded(c, deps, () => handleStore(c, deps)));
  app.post("/api/store", (c) => guarded(c, deps, () => handleStore(c, deps)));
}

async function guarded(c: Context, deps: IngestDeps, handle: () => Promise<Response>) {
  try {
    return await handle();
  } catch (error) {
    deps.services.log.error({ err: error, path: c.req.path }, "ingest request failed");
    return reject(c, deps, 503, "temporarily unable to store the event");
  }
}

function reject(c: Context, deps: IngestDeps, status: ErrorStatus, detail: string): Response {
  deps.services.metrics.ingestRejections.inc({ status });
  c.header("X-Sentry-Error", detail);
  if (status === 503) c.header("Retry-After", RETRY_AFTER_SECONDS);
  return c.json({ detail }, status);
}

function requestAuth(c: Context): IngestAuthResult {
  return extractIngestAuth({
    header: (name) => c.req.header(name),
    query: new URL(c.req.url).searchParams,
  });
}

type KeyCheck = { ok: true; key: KnownKey } | { ok: false; status: 401 | 403; detail: string };

async function checkKey(
  deps: IngestDeps,
  auth: IngestAuth,
  pathProjectId: number | null,
): Promise<KeyCheck> {
  const key = await deps.keys.lookup(auth.publicKey);
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

function contextFor(deps: IngestDeps, key: KnownKey, receivedAt: Date): IngestContext {
  const { config, blobs } = deps.services;
  return {
    projectId: key.projectId,
    keyId: key.keyId,
    receivedAt,
    limits: config.limits,
    maxEventAgeMs: config.retentionDays * DAY_MS,
    blobs,
    payloadStorage: config.payloadStorage,
  };
}

async function handleEnvelope(c: Context, deps: IngestDeps, preRead?: Buffer): Promise<Response> {
  const receivedAt = new Date();
  const pathProjectId = c.req.param("projectId") ? Number(c.req.param("projectId")) : null;
  const auth = requestAuth(c);
  if (!auth.ok && auth.status !== null) return reject(c, deps, auth.status, auth.detail);
  let key: KnownKey | null = null;
  if (auth.ok) {
    const check = await checkKey(deps, auth.auth, pathProjectId);
    if (!check.ok) return reject(c, deps, check.status, check.detail);
    key = check.key;
  }
  const { limits } = deps.services.config;
  let body = preRead;
  if (!body) {
    const read = await readBody(
      c.req.raw.body,
      c.req.header("content-encoding"),
      limits.maxEnvelopeBytes,
    );
    if (!read.ok) return reject(c, deps, read.status, read.detail);
    body = read.body;
  }
  const parsed = parseEnvelope(body);
  if (!parsed.ok) return reject(c, deps, 400, parsed.detail);
  if (!key) {
    const dsn =
      typeof parsed.envelope.headers.dsn === "string"
        ? parseDsn(parsed.envelope.headers.dsn)
        : null;
    if (!dsn) return reject(c, deps, 401, "missing authorization information");
    const fromDsn = authFromPairs({ sentry_key: dsn.publicKey }, undefined);
    if (!fromDsn.ok) return reject(c, deps, 401, "invalid dsn in envelope header");
    const check = await checkKey(deps, fromDsn.auth, pathProjectId);
    if (!check.ok) return reject(c, deps, check.status, check.detail);
    key = check.key;
  }
  const prepared = await prepareEnvelopeWrites(parsed.envelope, contextFor(deps, key, receivedAt));
  if (!prepared.ok) return reject(c, deps, prepared.status, prepared.detail);
  const failure = await commit(c, deps, prepared.writes);
  if (failure) return failure;
  for (const [type, outcome] of prepared.itemOutcomes) {
    deps.services.metrics.ingestItems.inc({ item_type: type, outcome });
  }
  return c.json(prepared.eventId ? { id: prepared.eventId } : {});
}

async function handleStore(c: Context, deps: IngestDeps): Promise<Response> {
  const receivedAt = new Date();
  const pathProjectId = c.req.param("projectId") ? Number(c.req.param("projectId")) : null;
  const auth = requestAuth(c);
  if (!auth.ok)
    return reject(
      c,
      deps,
      auth.status ?? 401,
      auth.status ? auth.detail : "missing authorization information",
    );
  const check = await checkKey(deps, auth.auth, pathProjectId);
  if (!check.ok) return reject(c, deps, check.status, check.detail);
  const isEnvelope = c.req.header("content-type")?.startsWith("application/x-sentry-envelope");
  const { limits } = deps.services.config;
  const maxBytes = isEnvelope ? limits.maxEnvelopeBytes : limits.maxEventBytes;
  const read = await readBody(c.req.raw.body, c.req.header("content-encoding"), maxBytes);
  if (!read.ok) return reject(c, deps, read.status, read.detail);
  if (isEnvelope) return handleEnvelope(c, deps, read.body);

  let body = read.body;
  const first = body.find((byte) => byte > 0x20);
  if (first !== undefined && first !== 0x7b) {
    const legacy = await decodeLegacyStoreBody(body, limits.maxEventBytes);
    if (!legacy.ok) return reject(c, deps, legacy.status, legacy.detail);
    body = legacy.body;
  }
  const ctx = contextFor(deps, check.key, receivedAt);
  const parsed = parseEventItem(body, null, undefined, ctx);
  if (!parsed.ok) return reject(c, deps, 400, `invalid event: ${parsed.detail}`);
  const hour = new Date(Math.floor(receivedAt.getTime() / 3_600_000) * 3_600_000);
  const isTransaction = parsed.type === "transaction";
  const category = isTransaction ? "transaction" : "error";
  const writes: IngestBatch = {
    events: isTransaction ? [] : [parsed.row],
    attachments: [],
    outcomes: [
      { projectId: ctx.projectId, hour, outcome: "accepted", category, reason: "", quantity: 1 },
    ],
  };
  const failure = await commit(c, deps, writes);
  if (failure) return failure;
  deps.services.metrics.ingestItems.inc({
    item_type: isTransaction ? "transaction" : "event",
    outcome: "accepted",
  });
  return c.json({ id: parsed.row.eventId });
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
