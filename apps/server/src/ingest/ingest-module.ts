import { insertIngestBatch } from "@sluice/db";
import { buildInfo } from "../build-info.ts";
import { liveNodes } from "../fleet-nodes.ts";
import { every } from "../interval-loop.ts";
import type { QuotaGate } from "../quota-gate.ts";
import type { StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { EventHandOff } from "./event-hand-off.ts";
import { GroupCommitter } from "./group-committer.ts";
import { ingestRoutes } from "./ingest-routes.ts";
import { createKeyCache } from "./key-cache.ts";
import { createPayloadStorageGuard } from "./payload-storage-guard.ts";

/** Connections of the pool that group commits leave to key lookups and readiness checks. */
const POOL_CONNECTIONS_KEPT = 2;
/** Longest a stored event waits for others to share its `event.process.batch` job (ms). */
const HAND_OFF_WINDOW_MS = 20;

/**
 * The ingest role: the Sentry ingest routes (`ingestRoutes`) over
 * one `GroupCommitter` that writes with `insertIngestBatch` and hands the
 * events stored for the first time to the queue after each commit, gathered
 * over up to `HAND_OFF_WINDOW_MS` into `event.process.batch` jobs (of up to
 * 500 events; `EventHandOff`). The hand-off is not awaited by the request: a
 * failed one is counted (`sluice_queue_enqueue_failures_total`) and left to
 * the sweeper. `drain` resolves when every pending group commit has committed
 * or failed and the events they stored were enqueued (or failed to be).
 * `quotas` decides what each request may store (docs/protocol.md §5.6).
 * Payloads are stored as `SLUICE_PAYLOAD_STORAGE` says, except that `zstd`
 * waits, checked at start and at every heartbeat, until every live node
 * reads it (`createPayloadStorageGuard`).
 */
export async function start(services: Services, quotas: QuotaGate): Promise<StartedRole> {
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
  const payloadStorage = createPayloadStorageGuard(
    config.payloadStorage,
    () => liveNodes(services),
    buildInfo(),
    log,
  );
  // Before the first request, so that it is already stored as the fleet allows.
  await payloadStorage.check();
  const deps = {
    services,
    keys: createKeyCache(db.orm, { maxEntries: config.keyCacheEntries }),
    committer,
    quotas,
    payloadStorage: payloadStorage.storage,
  };
  return {
    direct: ingestRoutes(deps),
    loops:
      config.payloadStorage === "zstd"
        ? [every(config.fleet.heartbeatMs, () => payloadStorage.check())]
        : [],
    drain: async () => {
      await committer.drain();
      await handOff.flush();
      await quotas.close();
    },
  };
}
