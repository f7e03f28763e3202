import { pruneAlertCounters, takeDeliveriesToEnqueue, tryTakeLease } from "@sluice/db";
import { Counter, Histogram } from "prom-client";
import { every } from "../interval-loop.ts";
import type { Loop, StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { deliverAlert } from "./delivery.ts";
import { createSenders } from "./senders.ts";

/** How often a node looks for pending deliveries to enqueue (ms). */
const OUTBOX_POLL_MS = 1_000;
/** Deliveries enqueued per poll. */
const OUTBOX_BATCH = 200;
/**
 * A pending delivery enqueued this long ago is enqueued again: Redis lost
 * its job, or the job failed for good before its outcome was recorded. A
 * job still queued (retrying) keeps its id, so this adds nothing then.
 */
const OUTBOX_STALE_MS = 5 * 60_000;
/** How often, under the `alert-counters` lease, ended counter windows are deleted (ms). */
const PRUNE_INTERVAL_MS = 3_600_000;

/**
 * The alerts role: sends the notifications that the worker's rule
 * evaluation recorded as pending deliveries in Postgres (the outbox). Every
 * second it takes pending deliveries not yet enqueued (`SKIP LOCKED`, so
 * nodes share them) and enqueues one `alert.deliver` job each (job id
 * `delivery-{id}`: one job per delivery); it runs those jobs,
 * `config.alerts.concurrency` at once, with the catalog's retries and
 * backoff; hourly it deletes ended counter windows. Metrics:
 * `sluice_alert_notifications_total{action,outcome}` and
 * `sluice_alert_delivery_duration_seconds{action}`. `drain` stops taking
 * jobs and waits for the active ones.
 */
export function start(services: Services): StartedRole {
  const { config, db, queue, log, metrics, instanceId } = services;
  const registers = [metrics.registry];
  const notifications = new Counter({
    name: "sluice_alert_notifications_total",
    help: "Alert delivery attempts, by action type (webhooks, slack, discord, msteams, email) and outcome (delivered, retry, failed, skipped).",
    labelNames: ["action", "outcome"],
    registers,
  });
  const duration = new Histogram({
    name: "sluice_alert_delivery_duration_seconds",
    help: "Time of one alert delivery attempt, by action type.",
    labelNames: ["action"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const senders = createSenders({
    smtpUrl: config.alerts.smtpUrl,
    emailFrom: config.alerts.emailFrom,
    timeoutMs: config.alerts.timeoutMs,
    userAgent: "sluice-webhooks",
    allowPrivateDestinations: config.alerts.allowPrivateDestinations,
  });
  const deps = {
    db,
    senders,
    publicUrl: () => services.config.publicUrl,
    observe: (action: string, outcome: string, seconds: number) => {
      notifications.inc({ action, outcome });
      if (outcome !== "skipped") duration.observe({ action }, seconds);
    },
  };
  const worker = queue.work(
    "alert.deliver",
    async (payload, run) => {
      const started = performance.now();
      try {
        await deliverAlert(deps, payload, run);
        metrics.jobs.inc({ job: "alert.deliver", result: "done" });
      } catch (error) {
        const final = run.final || (error as Error)?.name === "PermanentJobError";
        metrics.jobs.inc({ job: "alert.deliver", result: "error" });
        log.warn(
          { err: error, deliveryId: payload.deliveryId, attempt: run.attempt, final },
          final ? "alert delivery failed for good" : "alert delivery failed; retrying",
        );
        throw error;
      } finally {
        metrics.jobDuration.observe({ job: "alert.deliver" }, (performance.now() - started) / 1000);
      }
    },
    config.alerts.concurrency,
  );
  return {
    loops: [outboxLoop(services), pruneLoop(services, instanceId)],
    async drain() {
      await worker.close();
      senders.close();
    },
  };
}

function outboxLoop(services: Services): Loop {
  const { db, queue, log } = services;
  return every(OUTBOX_POLL_MS, async () => {
    try {
      for (;;) {
        const taken = await takeDeliveriesToEnqueue(db.pool, OUTBOX_BATCH, OUTBOX_STALE_MS);
        if (taken.length === 0) return;
        const fresh = taken.filter((t) => !t.stale).map((t) => ({ deliveryId: t.id }));
        const stale = taken.filter((t) => t.stale).map((t) => ({ deliveryId: t.id }));
        if (fresh.length > 0) await queue.enqueue("alert.deliver", fresh);
        if (stale.length > 0) await queue.requeue("alert.deliver", stale);
        if (taken.length < OUTBOX_BATCH) return;
      }
    } catch (error) {
      // What was taken but not enqueued is taken again once stale.
      log.warn({ err: error }, "alert outbox: enqueue failed; retrying");
    }
  });
}

function pruneLoop(services: Services, instanceId: string): Loop {
  const { db, log } = services;
  return every(PRUNE_INTERVAL_MS, async () => {
    try {
      if (!(await tryTakeLease(db.pool, "alert-counters", instanceId, PRUNE_INTERVAL_MS))) return;
      await pruneAlertCounters(db.pool, new Date());
    } catch (error) {
      log.warn({ err: error }, "alert counters not pruned; retrying next interval");
    }
  });
}
