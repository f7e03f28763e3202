import {
  countExpiredProjectRows,
  countExpiredRows,
  deleteAttachmentsBefore,
  deleteDefaultPartitionEvents,
  deleteExpiredIssues,
  deleteOutcomesBefore,
  deleteStaleUploadChunks,
  detachEventPartition,
  dropDetachedPartition,
  forgetBlobDeletion,
  isBlobReferenced,
  listEventPartitions,
  listProjectRetention,
  listQueuedBlobDeletions,
  readLease,
  trimEventFailures,
  trimEventIds,
} from "@sluice/db";
import type { Services } from "../services.ts";

const DAY_MS = 86_400_000;
/** Upload chunks no bundle names are deleted this long after their upload (ms). */
const CHUNK_MAX_AGE_MS = DAY_MS;
/** The lease `sluice backup create` holds; while it is held no blob is deleted. */
export const BACKUP_LEASE = "backup";
/** Postgres' lock_not_available: `lock_timeout` passed. */
const LOCK_NOT_AVAILABLE = "55P03";

export type RetentionOptions = {
  /** The clock: tests move it instead of waiting. */
  now: () => Date;
  /** The instance's event retention (SLUICE_RETENTION_DAYS). */
  retentionDays: number;
  /** Outcome counters' retention (SLUICE_OUTCOMES_RETENTION_DAYS). */
  outcomesDays: number;
  /** `lock_timeout` of each DETACH attempt (ms). */
  lockTimeoutMs: number;
  /** DETACH attempts per partition before it is left to the next run. */
  lockAttempts: number;
  /** Rows per delete statement. */
  batch: number;
  /** A blob is deleted this long after its last reference went, at the earliest (ms). */
  blobGraceMs: number;
  /** True: count and list what would go, change nothing. */
  dryRun: boolean;
  /** Checked between steps and batches; true stops the run (what is done stays done). */
  stopping: () => boolean;
  /** Renews the caller's lease; false means it was lost, and the run stops. */
  renewLease: () => Promise<boolean>;
  /** Told each step as it finishes (the CLI prints it; the worker logs it). */
  onProgress: (step: string, fields: Record<string, unknown>) => void;
};

export type RetentionReport = {
  dryRun: boolean;
  /** Events received before this are expired (UTC midnight; per-project cutoffs may be later). */
  cutoff: Date;
  partitions: { name: string; bytes: number; estimatedRows: number }[];
  /** Partitions whose DETACH did not get its lock in `lockAttempts` tries (left to the next run). */
  partitionsSkipped: string[];
  defaultEvents: number;
  eventIds: number;
  /** Processing-failure records of expired events (`sluice events failed`). */
  eventFailures: number;
  attachments: number;
  issues: number;
  uploadChunks: number;
  outcomes: number;
  blobs: number;
  /** False when the run stopped early (asked to, or lost its lease). */
  complete: boolean;
};

/** UTC midnight of the day that holds `t`. */
function utcDay(t: number): number {
  return Math.floor(t / DAY_MS) * DAY_MS;
}

/**
 * The effective cutoff of a project: its own retention when shorter than
 * the instance's, else the instance's day cutoff.
 */
function projectCutoff(now: Date, instanceCutoff: Date, retentionDays: number | null): Date {
  if (retentionDays === null) return instanceCutoff;
  const own = now.getTime() - retentionDays * DAY_MS;
  return new Date(Math.max(own, instanceCutoff.getTime()));
}

/**
 * One retention run (docs/operations.md §9), run by one node at a time
 * under the `maintenance` lease, its caller's:
 *
 * 1. detaches and drops the day partitions of `events` wholly older than
 *    the cutoff (UTC midnight of now − `retentionDays`), each DETACH under
 *    `lockTimeoutMs` and retried with backoff, so ingest waits at most that
 *    long behind it (a partition that never gets its lock is left to the
 *    next run); a partition a crashed run detached is dropped;
 * 2. deletes rows of `events_default`, `event_ids` and `event_failures`
 *    older than the cutoff;
 * 3. per project (its own, shorter retention if set): attachments, queueing
 *    their blobs, and issues whose last event expired, with hashes and users;
 * 4. upload chunks never assembled, a day after their upload;
 * 5. outcome counters older than `outcomesDays`;
 * 6. queued blobs older than `blobGraceMs` that no row refers to, unless a
 *    backup runs (its lease is held), so a backup copies every blob of its
 *    snapshot.
 *
 * Every delete goes `batch` rows at a time. With `dryRun` it only counts.
 * Throws database errors other than a lock timeout.
 */
export async function runRetention(
  services: Pick<Services, "db" | "blobs" | "log" | "metrics">,
  options: RetentionOptions,
): Promise<RetentionReport> {
  const { db, blobs, metrics } = services;
  const now = options.now();
  const cutoff = new Date(utcDay(now.getTime() - options.retentionDays * DAY_MS));
  const report: RetentionReport = {
    dryRun: options.dryRun,
    cutoff,
    partitions: [],
    partitionsSkipped: [],
    defaultEvents: 0,
    eventIds: 0,
    eventFailures: 0,
    attachments: 0,
    issues: 0,
    uploadChunks: 0,
    outcomes: 0,
    blobs: 0,
    complete: false,
  };
  const progress = (step: string, fields: Record<string, unknown>) => {
    options.onProgress(step, fields);
    const kind = step.replace(/[^a-z_]/g, "_");
    if (!options.dryRun && typeof fields.deleted === "number" && fields.deleted > 0)
      metrics.retentionDeleted.inc({ kind }, fields.deleted);
  };
  let lastRenew = Date.now();
  const mayGoOn = async () => {
    if (options.stopping()) return false;
    if (Date.now() - lastRenew < 5_000) return true;
    lastRenew = Date.now();
    return options.renewLease();
  };
  /** Runs `step` until it deletes fewer than a batch; returns the total. */
  const inBatches = async (step: () => Promise<number>) => {
    let total = 0;
    for (;;) {
      const n = await step();
      total += n;
      if (n < options.batch || !(await mayGoOn())) return total;
    }
  };
  const outcomesCutoff = new Date(utcDay(now.getTime() - options.outcomesDays * DAY_MS));
  const chunksCutoff = new Date(now.getTime() - CHUNK_MAX_AGE_MS);

  // 1. Partitions.
  for (const partition of await listEventPartitions(db.pool)) {
    if (partition.day.getTime() + DAY_MS > cutoff.getTime()) continue;
    if (!(await mayGoOn())) return report;
    const entry = {
      name: partition.name,
      bytes: partition.bytes,
      estimatedRows: Math.max(0, partition.estimatedRows),
    };
    if (options.dryRun) {
      report.partitions.push(entry);
      continue;
    }
    if (partition.attached && !(await detachWithRetries(db.pool, partition.name, options))) {
      report.partitionsSkipped.push(partition.name);
      progress("partition_skipped", { partition: partition.name });
      continue;
    }
    await dropDetachedPartition(db.pool, partition.name, options.lockTimeoutMs);
    report.partitions.push(entry);
    progress("partitions", { partition: partition.name, bytes: entry.bytes, deleted: 1 });
  }

  if (options.dryRun) {
    const counts = await countExpiredRows(db.pool, {
      events: cutoff,
      outcomes: outcomesCutoff,
      chunks: chunksCutoff,
    });
    report.defaultEvents = counts.defaultEvents;
    report.eventIds = counts.eventIds;
    report.uploadChunks = counts.uploadChunks;
    report.outcomes = counts.outcomes;
    for (const project of await listProjectRetention(db.pool)) {
      const before = projectCutoff(now, cutoff, project.retentionDays);
      const rows = await countExpiredProjectRows(db.pool, project.projectId, before);
      report.attachments += rows.attachments;
      report.issues += rows.issues;
    }
    report.blobs = (
      await listQueuedBlobDeletions(db.pool, new Date(now.getTime() - options.blobGraceMs), 10_000)
    ).length;
    report.complete = true;
    return report;
  }

  // 2. Rows of the default partition and the idempotency guard.
  report.defaultEvents = await inBatches(() =>
    deleteDefaultPartitionEvents(db.pool, cutoff, options.batch),
  );
  progress("default_events", { deleted: report.defaultEvents });
  if (!(await mayGoOn())) return report;
  report.eventIds = await inBatches(() => trimEventIds(db.pool, cutoff, options.batch));
  progress("event_ids", { deleted: report.eventIds });
  report.eventFailures = await inBatches(() => trimEventFailures(db.pool, cutoff, options.batch));
  progress("event_failures", { deleted: report.eventFailures });

  // 3. Per project: attachments and issues.
  for (const project of await listProjectRetention(db.pool)) {
    if (!(await mayGoOn())) return report;
    const before = projectCutoff(now, cutoff, project.retentionDays);
    const attachments = await inBatches(() =>
      deleteAttachmentsBefore(db.pool, project.projectId, before, options.batch),
    );
    const issues = await inBatches(() =>
      deleteExpiredIssues(db.pool, project.projectId, before, options.batch),
    );
    report.attachments += attachments;
    report.issues += issues;
    if (attachments > 0)
      progress("attachments", { project: project.projectId, deleted: attachments });
    if (issues > 0) progress("issues", { project: project.projectId, deleted: issues });
  }

  // 4, 5. Chunks and outcomes.
  if (!(await mayGoOn())) return report;
  report.uploadChunks = await inBatches(() =>
    deleteStaleUploadChunks(db.pool, chunksCutoff, options.batch),
  );
  progress("upload_chunks", { deleted: report.uploadChunks });
  report.outcomes = await inBatches(() =>
    deleteOutcomesBefore(db.pool, outcomesCutoff, options.batch),
  );
  progress("outcomes", { deleted: report.outcomes });

  // 6. Blobs.
  const backup = await readLease(db.pool, BACKUP_LEASE);
  if (backup) {
    progress("blobs_deferred", { reason: "a backup is running", holder: backup.holder });
  } else {
    // The clock is read again: blobs queued by this very run count from their queueing.
    const graceEnd = new Date(options.now().getTime() - options.blobGraceMs);
    for (;;) {
      const queued = await listQueuedBlobDeletions(db.pool, graceEnd, options.batch);
      for (const { blobKey, queuedAt } of queued) {
        if (!(await isBlobReferenced(db.pool, blobKey))) {
          if (await blobs.deleteIfWrittenBefore(blobKey, queuedAt)) report.blobs += 1;
        }
        await forgetBlobDeletion(db.pool, blobKey);
      }
      if (queued.length < options.batch || !(await mayGoOn())) break;
    }
    progress("blobs", { deleted: report.blobs });
  }
  report.complete = true;
  return report;
}

/** DETACH with `lockAttempts` tries, backing off 250 ms, 500 ms, … (capped at 5 s); false when none got the lock. */
async function detachWithRetries(
  pool: Services["db"]["pool"],
  name: string,
  options: Pick<RetentionOptions, "lockTimeoutMs" | "lockAttempts" | "onProgress">,
): Promise<boolean> {
  for (let attempt = 1; attempt <= options.lockAttempts; attempt++) {
    try {
      await detachEventPartition(pool, name, options.lockTimeoutMs);
      return true;
    } catch (error) {
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error;
      options.onProgress("partition_lock_timeout", { partition: name, attempt });
      const backoff = Math.min(5_000, 250 * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random() / 2)));
    }
  }
  return false;
}
