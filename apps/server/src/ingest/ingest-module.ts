import { insertIngestBatch } from "@sluice/db";
import type { QuotaGate } from "../quota-gate.ts";
import type { StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { EventHandOff } from "./event-hand-off.ts";
import { GroupCommitter } from "./group-committer.ts";
import { registerIngestRoutes } from "./ingest-routes.ts";
import { createKeyCache } from "./key-cache.ts";

/** Connections of the pool that group commits leave to key lookups and readiness checks. */
const POOL_CONNECTIONS_KEPT = 2;
/** Longest a stored event waits for others to share its `event.process.batch` job (ms). */
const HAND_OFF_WINDOW_MS = 20;

/**
 * The ingest role: the Sentry ingest routes (`registerIngestRoutes`) over
 * one `GroupCommitter` that writes with `insertIngestBatch` and hands the
 * events stored for the first time to the queue after each commit, gathered
 * over up to `HAND_OFF_WINDOW_MS` into `event.process.batch` jobs (of up to
 * 500 events; `EventHandOff`). The hand-off is not awaited by the request: a
 * failed one is counted (`sluice_queue_enqueue_failures_total`) and left to
 * the sweeper. `drain` resolves when every pending group commit has committed
 * or failed and the events they stored were enqueued (or failed to be).
 * `quotas` decides what each request may store (docs/protocol.md §5.6).
 */
export function start(services: Services, quotas: QuotaGate): StartedRole {
  const { config, db, queue, log, metrics } = services;
  const handOff = new EventHandOff({
    enqueue: (payloads) => queue.enqueue("event.process.batch", payloads),
    onFailure: (error, events) => {
      metrics.enqueueFailures.inc();
      log.warn({ err: error, events }, "enqueue failed; the sweeper will enqueue these events");
    },
    windowMs: HAND_OFF_WINDOW_MS,
  });
  const committer = new GroupCommitter(
    (batch) => insertIngestBatch(db.pool, batch),
    (stored) => handOff.add(stored),
    (events, seconds) => {
      metrics.groupCommitEvents.observe(events);
      metrics.groupCommitDuration.observe(seconds);
    },
    {
      windowMs: config.groupCommit.windowMs,
      maxEvents: config.groupCommit.maxEvents,
      maxPending: config.groupCommit.maxPending,
      maxInFlight: Math.max(1, config.dbPoolSize - POOL_CONNECTIONS_KEPT),
    },
  );
  const deps = {
    services,
    keys: createKeyCache(db.orm, { maxEntries: config.keyCacheEntries }),
    committer,
    quotas,
  };
  return {
    mount: (app) => registerIngestRoutes(app, deps),
    drain: async () => {
      await committer.drain();
      await handOff.flush();
      await quotas.close();
    },
  };
}
