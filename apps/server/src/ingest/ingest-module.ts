import { insertIngestBatch, type StoredEvent } from "@sluice/db";
import { eventBatchPayloads } from "@sluice/queue";
import type { QuotaGate } from "../quota-gate.ts";
import type { StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { GroupCommitter } from "./group-committer.ts";
import { registerIngestRoutes } from "./ingest-routes.ts";
import { createKeyCache } from "./key-cache.ts";

/** Connections of the pool that group commits leave to key lookups and readiness checks. */
const POOL_CONNECTIONS_KEPT = 2;

/**
 * The ingest role: the Sentry ingest routes (`registerIngestRoutes`) over
 * one `GroupCommitter` that writes with `insertIngestBatch` and hands the
 * events stored for the first time to the queue after each commit, as one
 * `event.process.batch` job per commit (per 500 events). The
 * hand-off is not awaited by the request nor by `drain`: a failed one is
 * counted (`sluice_queue_enqueue_failures_total`) and left to the sweeper.
 * `drain` resolves when every pending group commit has committed or failed.
 * `quotas` decides what each request may store (docs/protocol.md §5.6).
 */
export function start(services: Services, quotas: QuotaGate): StartedRole {
  const { config, db, queue, log, metrics } = services;
  const handOff = (stored: StoredEvent[]) => {
    const jobs = stored.map((e) => ({
      projectId: e.projectId,
      eventId: e.eventId,
      receivedAt: e.receivedAt.toISOString(),
    }));
    queue.enqueue("event.process.batch", eventBatchPayloads(jobs)).catch((error) => {
      metrics.enqueueFailures.inc();
      log.warn(
        { err: error, events: jobs.length },
        "enqueue failed; the sweeper will enqueue these events",
      );
    });
  };
  const committer = new GroupCommitter(
    (batch) => insertIngestBatch(db.pool, batch),
    handOff,
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
      await quotas.close();
    },
  };
}
