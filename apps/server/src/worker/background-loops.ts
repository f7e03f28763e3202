import { ensureEventPartitions, listUnprocessedEvents, tryTakeLease } from "@sluice/db";
import type { Services } from "../services.ts";

const SWEEP_BATCH = 1000;
const MAINTENANCE_INTERVAL_MS = 3_600_000;

/** A loop that runs `tick` every `intervalMs` until stopped. */
export type Loop = { stop(): Promise<void> };

function every(intervalMs: number, tick: () => Promise<void>): Loop {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (!running) running = tick().finally(() => (running = null));
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * The sweeper (DESIGN.md promise 3): under the `sweeper` lease, so one node
 * at a time, it enqueues again every event stored more than
 * `sweeper.minAgeMs` ago and still unprocessed (Redis flushed, worker killed,
 * enqueue failed). Jobs are idempotent, so a duplicate costs nothing.
 */
export function startSweeper(services: Services): Loop {
  const { config, db, queue, log, metrics, instanceId } = services;
  return every(config.sweeper.intervalMs, async () => {
    try {
      if (!(await tryTakeLease(db.pool, "sweeper", instanceId, config.sweeper.intervalMs * 3)))
        return;
      for (;;) {
        const events = await listUnprocessedEvents(db.pool, config.sweeper.minAgeMs, SWEEP_BATCH);
        if (events.length === 0) return;
        await queue.enqueueEvents(
          events.map((e) => ({
            projectId: e.projectId,
            eventId: e.eventId,
            receivedAt: e.receivedAt.toISOString(),
          })),
        );
        metrics.sweeperRequeued.inc(events.length);
        log.info({ events: events.length }, "sweeper enqueued unprocessed events");
        if (events.length < SWEEP_BATCH) return;
      }
    } catch (error) {
      log.warn({ err: error }, "sweep failed; retrying next interval");
    }
  });
}

/** Hourly, under the `maintenance` lease: create the coming days' event partitions. */
export function startMaintenance(services: Services): Loop {
  const { db, log, instanceId } = services;
  return every(MAINTENANCE_INTERVAL_MS, async () => {
    try {
      if (!(await tryTakeLease(db.pool, "maintenance", instanceId, MAINTENANCE_INTERVAL_MS)))
        return;
      const created = await ensureEventPartitions(db.pool, new Date(), 0, 3);
      if (created.length > 0) log.info({ created }, "event partitions created");
    } catch (error) {
      log.warn({ err: error }, "maintenance failed; retrying next interval");
    }
  });
}
