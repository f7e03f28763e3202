import { loadProjectLimits, recordSpike } from "@sluice/db";
import { Counter, Histogram } from "prom-client";
import type { QuotaGate } from "../quota-gate.ts";
import type { Services } from "../services.ts";
import { createMemoryCounterStore, createRedisCounterStore } from "./counter-store.ts";
import { createQuotaLimiter } from "./quota-limiter.ts";

/** At most one "counters unreachable" warning per this many ms (a down Redis fails every batch). */
const WARN_EVERY_MS = 10_000;

/**
 * Builds ingest's `QuotaGate` (docs/protocol.md §5.6): counters in Redis
 * when `REDIS_URL` is set (shared by every node), else in this process;
 * metrics on the process's registry; spike starts and ends logged,
 * counted and recorded on the project (`spike_protection`). The composition
 * root calls it for the ingest role.
 */
export function createQuotaGate(services: Services): QuotaGate {
  const { config, log, metrics, db } = services;
  const registers = [metrics.registry];
  const refused = new Counter({
    name: "sluice_rate_limited_total",
    help: "Data categories of requests refused by a rate limit or quota, by scope and category.",
    labelNames: ["scope", "category"],
    registers,
  });
  const failures = new Counter({
    name: "sluice_quota_store_failures_total",
    help: "Limit checks accepted without counting because the counters (Redis) failed: ingest fails open.",
    registers,
  });
  const roundTrips = new Histogram({
    name: "sluice_quota_round_trip_checks",
    help: "Limit checks carried by one counter round trip (one per group of requests).",
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers,
  });
  const spikes = new Counter({
    name: "sluice_spike_protection_total",
    help: "Spike protection changes, by change (start, end).",
    labelNames: ["change"],
    registers,
  });
  let lastWarning = -Infinity;
  const warn = (error: unknown) => {
    failures.inc();
    const now = Date.now();
    if (now - lastWarning < WARN_EVERY_MS) return;
    lastWarning = now;
    log.warn({ err: error }, "rate limit counters unavailable; accepting without limits");
  };
  const store = config.redisUrl
    ? createRedisCounterStore(config.redisUrl, config.quotas.redisTimeoutMs, (error) => {
        // ioredis reports every reconnect attempt; the failed commands are counted already.
        const now = Date.now();
        if (now - lastWarning < WARN_EVERY_MS) return;
        lastWarning = now;
        log.warn({ err: error }, "rate limit Redis connection failed");
      })
    : createMemoryCounterStore(Date.now);
  return createQuotaLimiter({
    store,
    prefix: config.queuePrefix,
    loadLimits: (projectId) => loadProjectLimits(db.orm, projectId),
    now: Date.now,
    batchWindowMs: config.quotas.batchWindowMs,
    spike: config.quotas.spike,
    onStoreFailure: warn,
    onRefused: (limit, category) => refused.inc({ scope: limit.scope, category }),
    onRoundTrip: (checks) => roundTrips.observe(checks),
    onSpike: (projectId, change) => {
      spikes.inc({ change: change.active ? "start" : "end" });
      if (change.active) {
        log.warn(
          { projectId, bound: change.bound },
          "spike protection: project limited to its bound (events per minute)",
        );
      } else {
        log.info({ projectId }, "spike protection: spike ended");
      }
      recordSpike(db.orm, projectId, change).catch((error) =>
        log.warn({ err: error, projectId }, "spike protection state not recorded"),
      );
    },
  });
}
