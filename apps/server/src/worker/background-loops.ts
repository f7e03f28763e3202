import { ensureEventPartitions, listEventsToSweep, tryTakeLease } from "@sluice/db";
import type { BackgroundLoop, Loop } from "../roles.ts";
import type { Services } from "../services.ts";

const SWEEP_BATCH = 1000;
const MAINTENANCE_INTERVAL_MS = 3_600_000;

/** Runs `tick` every `intervalMs`; `stop` waits for a running tick, which sees `stopping()`. */
function every(intervalMs: number, tick: (stopping: () => boolean) => Promise<void>): Loop {
  let running: Promise<void> | null = null;
  let stopped = false;
  const timer = setInterval(() => {
    if (!running) running = tick(() => stopped).finally(() => (running = null));
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * One sweep: enqueues every event stored more than `minAgeMs` ago and still
 * unprocessed, except those marked failed (poison events), `batch` at a
 * time in key order, each once, until the backlog is walked through or
 * `stopping()` says to stop (checked between batches).
 * Returns how many events it enqueued. Throws on database or queue failure.
 */
export async function sweepUnprocessed(
  services: Pick<Services, "db" | "queue" | "log" | "metrics">,
  options: { minAgeMs: number; batch: number; stopping: () => boolean },
): Promise<number> {
  const { db, queue, log, metrics } = services;
  let enqueued = 0;
  let after = null;
  while (!options.stopping()) {
    const events = await listEventsToSweep(db.pool, options.minAgeMs, options.batch, after);
    if (events.length === 0) break;
    await queue.requeue(
      "event.process",
      events.map((e) => ({
        projectId: e.projectId,
        eventId: e.eventId,
        receivedAt: e.receivedAt.toISOString(),
      })),
    );
    enqueued += events.length;
    metrics.sweeperRequeued.inc(events.length);
    log.info({ events: events.length }, "sweeper enqueued unprocessed events");
    if (events.length < options.batch) break;
    after = events.at(-1) ?? null;
  }
  return enqueued;
}

/**
 * The sweeper: every `sweeper.intervalMs`, under the `sweeper` lease, so one
 * node at a time, it enqueues again every event stored more than
 * `sweeper.minAgeMs` ago and still unprocessed (Redis flushed, worker killed,
 * enqueue failed). Jobs are idempotent, so a duplicate costs nothing.
 */
export const sweeperLoop: BackgroundLoop = { start: startSweeper };

function startSweeper(services: Services): Loop {
  const { config, db, log, instanceId } = services;
  return every(config.sweeper.intervalMs, async (stopping) => {
    try {
      if (!(await tryTakeLease(db.pool, "sweeper", instanceId, config.sweeper.intervalMs * 3)))
        return;
      await sweepUnprocessed(services, {
        minAgeMs: config.sweeper.minAgeMs,
        batch: SWEEP_BATCH,
        stopping,
      });
    } catch (error) {
      log.warn({ err: error }, "sweep failed; retrying next interval");
    }
  });
}

/** Hourly, under the `maintenance` lease: create the coming days' event partitions. */
export const maintenanceLoop: BackgroundLoop = { start: startMaintenance };

function startMaintenance(services: Services): Loop {
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
