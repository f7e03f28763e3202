import { finishLease, tryTakeLease } from "@sluice/db";
import type { Config } from "../config.ts";
import type { Services } from "../services.ts";
import type { RetentionOptions } from "./run-retention.ts";

/** The lease partition maintenance and retention run under, one node at a time. */
export const MAINTENANCE_LEASE = "maintenance";
/**
 * How long the lease lasts while a run holds it (ms); renewed every few
 * seconds, so a holder that died frees it within this.
 */
export const MAINTENANCE_LEASE_MS = 120_000;
/** Maintenance runs hourly (ms). */
export const MAINTENANCE_INTERVAL_MS = 3_600_000;
/**
 * After a run, its holder keeps the lease idle this long (ms), so the
 * fleet runs maintenance about once an hour, not once per node; a command
 * run by hand may take an idle lease at once (`takeLeaseUnlessRunning`).
 */
const MAINTENANCE_IDLE_MS = MAINTENANCE_INTERVAL_MS - 5 * 60_000;
/** Rows per retention delete statement. */
const RETENTION_BATCH = 1_000;
/** DETACH attempts per partition and run. */
const DETACH_ATTEMPTS = 8;

/** Retention's options from the configuration, for a run by `holder` under the maintenance lease. */
export function retentionOptions(
  config: Config,
  services: Pick<Services, "db">,
  holder: string,
  overrides: Partial<RetentionOptions> = {},
): RetentionOptions {
  return {
    now: () => new Date(),
    retentionDays: config.retentionDays,
    outcomesDays: config.retention.outcomesDays,
    lockTimeoutMs: config.retention.lockTimeoutMs,
    lockAttempts: DETACH_ATTEMPTS,
    batch: RETENTION_BATCH,
    blobGraceMs: config.retention.blobGraceMs,
    dryRun: false,
    stopping: () => false,
    renewLease: () =>
      tryTakeLease(services.db.pool, MAINTENANCE_LEASE, holder, MAINTENANCE_LEASE_MS),
    onProgress: () => {},
    ...overrides,
  };
}

/** Ends a run: the lease stays with `holder`, idle, until the next hourly turn. */
export function finishMaintenance(services: Pick<Services, "db">, holder: string): Promise<void> {
  return finishLease(services.db.pool, MAINTENANCE_LEASE, holder, MAINTENANCE_IDLE_MS);
}
