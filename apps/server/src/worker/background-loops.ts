import { ensureEventPartitions, listEventsToSweep, tryTakeLease } from "@sluice/db";
import { every } from "../interval-loop.ts";
import {
  finishMaintenance,
  MAINTENANCE_INTERVAL_MS,
  MAINTENANCE_LEASE,
  MAINTENANCE_LEASE_MS,
  retentionOptions,
} from "../retention/maintenance-lease.ts";
import { runRetention } from "../retention/run-retention.ts";
import type { BackgroundLoop, Loop } from "../roles.ts";
import type { Services } from "../services.ts";

const SWEEP_BATCH = 1000;

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

/**
 * Hourly, under the `maintenance` lease (held for `MAINTENANCE_LEASE_MS`,
 * renewed while it works, then kept idle until the next hour): create the
 * coming days' event partitions, then run retention (retention/).
 */
export const maintenanceLoop: BackgroundLoop = { start: startMaintenance };

function startMaintenance(services: Services): Loop {
  return every(MAINTENANCE_INTERVAL_MS, (stopping) => maintenanceTick(services, stopping));
}

/**
 * One maintenance turn: when this node gets the `maintenance` lease (free,
 * or expired after the last holder's idle hour), it creates the coming
 * days' partitions and runs retention, then keeps the lease idle until the
 * next hour. Failures are logged and counted, never thrown.
 */
export async function maintenanceTick(services: Services, stopping: () => boolean): Promise<void> {
  const { config, db, log, instanceId } = services;
  try {
    if (!(await tryTakeLease(db.pool, MAINTENANCE_LEASE, instanceId, MAINTENANCE_LEASE_MS))) return;
    try {
      const created = await ensureEventPartitions(db.pool, new Date(), 0, 3);
      if (created.length > 0) log.info({ created }, "event partitions created");
      const report = await runRetention(
        services,
        retentionOptions(config, services, instanceId, {
          stopping,
          onProgress: (step, fields) => log.debug({ step, ...fields }, "retention step"),
        }),
      );
      services.metrics.retentionRuns.inc({ result: report.complete ? "done" : "partial" });
      log.info(
        { ...report, partitions: report.partitions.map((p) => p.name) },
        "retention run finished",
      );
    } finally {
      await finishMaintenance(services, instanceId);
    }
  } catch (error) {
    services.metrics.retentionRuns.inc({ result: "failed" });
    log.warn({ err: error }, "maintenance failed; retrying next interval");
  }
}
