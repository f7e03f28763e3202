import type pg from "pg";
import { type Queryable, withTransaction } from "../database.ts";

/**
 * The SQL of retention (apps/server/src/retention/, docs/operations.md §9).
 * Every delete is bounded (`batch` rows per statement), so no statement
 * holds row locks or bloats a table for long; the big table, `events`, is
 * never deleted from row by row but dropped a day partition at a time.
 */

/** A day partition of `events`, attached or left detached by a run that stopped half-way. */
export type EventPartition = {
  name: string;
  /** The UTC day the partition holds (its lower bound). */
  day: Date;
  attached: boolean;
  /** Bytes on disk with indexes and TOAST (`pg_total_relation_size`). */
  bytes: number;
  /** Planner estimate of its rows (`reltuples`; -1 before the first ANALYZE). */
  estimatedRows: number;
};

/** Lists the `events_pYYYYMMDD` tables, oldest first; `events_default` is never listed. */
export async function listEventPartitions(db: Queryable): Promise<EventPartition[]> {
  const result = await db.query(
    `SELECT c.relname, c.relispartition AND i.inhparent = 'events'::regclass AS attached,
            pg_total_relation_size(c.oid) AS bytes, c.reltuples
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
      WHERE c.relkind = 'r' AND c.relname ~ '^events_p[0-9]{8}$'
      ORDER BY c.relname`,
  );
  return result.rows.map((r) => {
    const name = r.relname as string;
    const d = name.slice("events_p".length);
    return {
      name,
      day: new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00Z`),
      attached: r.attached === true,
      bytes: Number(r.bytes),
      estimatedRows: Number(r.reltuples),
    };
  });
}

/**
 * Detaches one day partition of `events` under `lock_timeout`. Postgres
 * refuses `DETACH … CONCURRENTLY` while `events_default` exists, so this is
 * a plain DETACH: it needs an ACCESS EXCLUSIVE lock on `events` for the
 * instant of a catalog change, and ingest's inserts queue behind it only
 * while it waits for that lock, which `lockTimeoutMs` bounds. Throws the
 * lock timeout (55P03) for the caller to retry; a partition already
 * detached is not an error.
 */
export async function detachEventPartition(
  pool: pg.Pool,
  name: string,
  lockTimeoutMs: number,
): Promise<void> {
  assertPartitionName(name);
  await withTransaction(
    pool,
    async ({ client }) => {
      const attached = await client.query(
        `SELECT 1 FROM pg_inherits WHERE inhparent = 'events'::regclass AND inhrelid = to_regclass($1)`,
        [name],
      );
      if (attached.rowCount) await client.query(`ALTER TABLE events DETACH PARTITION ${name}`);
    },
    { lockTimeoutMs },
  );
}

/**
 * Drops a partition already detached from `events`: a table of its own by
 * now, so the lock it takes is on that table alone and ingest never waits
 * for it. Refuses a table still attached (it would lock `events`).
 */
export async function dropDetachedPartition(
  pool: pg.Pool,
  name: string,
  lockTimeoutMs: number,
): Promise<void> {
  assertPartitionName(name);
  await withTransaction(
    pool,
    async ({ client }) => {
      const attached = await client.query(
        "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1)",
        [name],
      );
      if (attached.rowCount) throw new Error(`${name} is still a partition of events`);
      await client.query(`DROP TABLE IF EXISTS ${name}`);
    },
    { lockTimeoutMs },
  );
}

function assertPartitionName(name: string): void {
  if (!/^events_p[0-9]{8}$/.test(name)) throw new Error(`not an event partition: ${name}`);
}

/**
 * Deletes up to `batch` rows of `events_default` (events of a day that had
 * no partition) received before `before`; returns how many. The only row
 * deletes of events: that partition stays small.
 */
export async function deleteDefaultPartitionEvents(
  db: Queryable,
  before: Date,
  batch: number,
): Promise<number> {
  const result = await db.query(
    `DELETE FROM events_default WHERE ctid = ANY (ARRAY(
       SELECT ctid FROM events_default WHERE received_at < $1 LIMIT $2))`,
    [before, batch],
  );
  return result.rowCount ?? 0;
}

/** Deletes up to `batch` `event_ids` rows received before `before` (index on received_at); returns how many. */
export async function trimEventIds(db: Queryable, before: Date, batch: number): Promise<number> {
  const result = await db.query(
    `DELETE FROM event_ids WHERE (project_id, event_id) IN (
       SELECT project_id, event_id FROM event_ids WHERE received_at < $1 LIMIT $2)`,
    [before, batch],
  );
  return result.rowCount ?? 0;
}

/** Deletes up to `batch` `event_failures` rows of events received before `before`; returns how many. */
export async function trimEventFailures(
  db: Queryable,
  before: Date,
  batch: number,
): Promise<number> {
  const result = await db.query(
    `DELETE FROM event_failures WHERE (project_id, event_id) IN (
       SELECT project_id, event_id FROM event_failures WHERE received_at < $1 LIMIT $2)`,
    [before, batch],
  );
  return result.rowCount ?? 0;
}

/**
 * Deletes up to `batch` attachments of `projectId` stored before `before`
 * and queues their blobs in `blob_deletions` in the same statement, so a
 * crash never forgets a blob. An attachment is written in the statement
 * that stores its event (`insertIngestBatch`), after the event's
 * `received_at` was taken, so `created_at < before` means its event was
 * received before `before` too. Returns how many rows went.
 */
export async function deleteAttachmentsBefore(
  db: Queryable,
  projectId: number,
  before: Date,
  batch: number,
): Promise<number> {
  const result = await db.query(
    `WITH gone AS (
       DELETE FROM attachments WHERE id = ANY (ARRAY(
         SELECT id FROM attachments WHERE project_id = $1 AND created_at < $2
          ORDER BY created_at LIMIT $3))
       RETURNING blob_key),
     queued AS (
       INSERT INTO blob_deletions (blob_key) SELECT DISTINCT blob_key FROM gone
       ON CONFLICT (blob_key) DO UPDATE SET queued_at = now())
     SELECT count(*)::int AS n FROM gone`,
    [projectId, before, batch],
  );
  return result.rows[0].n;
}

/**
 * Deletes up to `batch` issues of `projectId` whose last event is older
 * than `before` and that have no event received since (`last_seen` is the
 * client's time, so the events themselves are asked), with their hashes,
 * users and tag values, as Sentry's cleanup does. Issues a worker has locked right now are
 * skipped (`SKIP LOCKED`): a new event is joining them. Returns how many.
 */
export async function deleteExpiredIssues(
  pool: pg.Pool,
  projectId: number,
  before: Date,
  batch: number,
): Promise<number> {
  return withTransaction(pool, async ({ client }) => {
    const doomed = await client.query(
      `SELECT id FROM issues i
        WHERE project_id = $1 AND last_seen < $2
          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.issue_id = i.id AND e.received_at >= $2)
        ORDER BY last_seen LIMIT $3
        FOR UPDATE SKIP LOCKED`,
      [projectId, before, batch],
    );
    const ids = doomed.rows.map((r) => r.id as string);
    if (ids.length === 0) return 0;
    await client.query("DELETE FROM issue_users WHERE issue_id = ANY ($1::bigint[])", [ids]);
    // Tag values (migration 0010): the issue's own rows, through the primary key.
    await client.query("DELETE FROM issue_tag_values WHERE issue_id = ANY ($1::bigint[])", [ids]);
    // Alert state of the issue (migration 0009): small tables, bounded by rules × issues.
    await client.query(
      "DELETE FROM alert_deliveries WHERE firing_id IN (SELECT id FROM alert_firings WHERE issue_id = ANY ($1::bigint[]))",
      [ids],
    );
    for (const table of ["alert_firings", "alert_rule_counters", "alert_rule_users"])
      await client.query(`DELETE FROM ${table} WHERE issue_id = ANY ($1::bigint[])`, [ids]);
    await client.query("DELETE FROM issue_hashes WHERE issue_id = ANY ($1::bigint[])", [ids]);
    const deleted = await client.query("DELETE FROM issues WHERE id = ANY ($1::bigint[])", [ids]);
    return deleted.rowCount ?? 0;
  });
}

/**
 * Deletes up to `batch` upload chunks stored before `before` that no
 * artifact bundle names (never assembled), queueing their blobs; returns
 * how many. sentry-cli uploads a missing chunk again, so this is safe even
 * for an upload that resumes later.
 */
export async function deleteStaleUploadChunks(
  db: Queryable,
  before: Date,
  batch: number,
): Promise<number> {
  const result = await db.query(
    `WITH gone AS (
       DELETE FROM upload_chunks c WHERE (organization_id, sha1) IN (
         SELECT organization_id, sha1 FROM upload_chunks u
          WHERE u.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM artifact_bundles b
                             WHERE b.organization_id = u.organization_id AND u.sha1 = ANY (b.chunks))
          LIMIT $2)
       RETURNING blob_key),
     queued AS (
       INSERT INTO blob_deletions (blob_key) SELECT DISTINCT blob_key FROM gone
       ON CONFLICT (blob_key) DO UPDATE SET queued_at = now())
     SELECT count(*)::int AS n FROM gone`,
    [before, batch],
  );
  return result.rows[0].n;
}

/** Deletes up to `batch` outcome counters of hours before `before`; returns how many. */
export async function deleteOutcomesBefore(
  db: Queryable,
  before: Date,
  batch: number,
): Promise<number> {
  const result = await db.query(
    `DELETE FROM outcomes WHERE ctid = ANY (ARRAY(
       SELECT ctid FROM outcomes WHERE hour < $1 LIMIT $2))`,
    [before, batch],
  );
  return result.rowCount ?? 0;
}

/** A blob waiting for deletion. */
export type QueuedBlobDeletion = { blobKey: string; queuedAt: Date };

/** Up to `batch` queued blob deletions queued before `before`, oldest first. */
export async function listQueuedBlobDeletions(
  db: Queryable,
  before: Date,
  batch: number,
): Promise<QueuedBlobDeletion[]> {
  const result = await db.query(
    `SELECT blob_key, queued_at FROM blob_deletions WHERE queued_at < $1
      ORDER BY queued_at, blob_key LIMIT $2`,
    [before, batch],
  );
  return result.rows.map((r) => ({ blobKey: r.blob_key, queuedAt: r.queued_at }));
}

/** True when a row of attachments, artifacts or upload_chunks refers to the blob. */
export async function isBlobReferenced(db: Queryable, blobKey: string): Promise<boolean> {
  const result = await db.query(
    `SELECT EXISTS (SELECT 1 FROM attachments WHERE blob_key = $1)
         OR EXISTS (SELECT 1 FROM artifacts WHERE blob_key = $1)
         OR EXISTS (SELECT 1 FROM upload_chunks WHERE blob_key = $1) AS referenced`,
    [blobKey],
  );
  return result.rows[0].referenced === true;
}

/** Forgets a queued blob deletion (done, or the blob is referenced again). */
export async function forgetBlobDeletion(db: Queryable, blobKey: string): Promise<void> {
  await db.query("DELETE FROM blob_deletions WHERE blob_key = $1", [blobKey]);
}

/** A project's retention: its own days (null: the instance's). */
export type ProjectRetention = { projectId: number; retentionDays: number | null };

/** Every project's retention setting, by id. */
export async function listProjectRetention(db: Queryable): Promise<ProjectRetention[]> {
  const result = await db.query("SELECT id, retention_days FROM projects ORDER BY id");
  return result.rows.map((r) => ({
    projectId: Number(r.id),
    retentionDays: r.retention_days === null ? null : Number(r.retention_days),
  }));
}

/**
 * Sets a project's retention in days (null: back to the instance's). The
 * caller bounds the value (retention/project-retention-setting.ts).
 * Returns false when there is no such project.
 */
export async function setProjectRetentionDays(
  db: Queryable,
  projectId: number,
  retentionDays: number | null,
): Promise<boolean> {
  const result = await db.query("UPDATE projects SET retention_days = $2 WHERE id = $1", [
    projectId,
    retentionDays,
  ]);
  return result.rowCount === 1;
}

/** What a dry run reports: rows that a run with these cutoffs would delete. */
export type RetentionCounts = {
  eventIds: number;
  defaultEvents: number;
  outcomes: number;
  uploadChunks: number;
};

/** Counts the instance-wide rows older than the cutoffs (for `--dry-run`; exact counts). */
export async function countExpiredRows(
  db: Queryable,
  cutoffs: { events: Date; outcomes: Date; chunks: Date },
): Promise<RetentionCounts> {
  const result = await db.query(
    `SELECT (SELECT count(*) FROM event_ids WHERE received_at < $1)::int AS event_ids,
            (SELECT count(*) FROM events_default WHERE received_at < $1)::int AS default_events,
            (SELECT count(*) FROM outcomes WHERE hour < $2)::int AS outcomes,
            (SELECT count(*) FROM upload_chunks u WHERE u.created_at < $3
               AND NOT EXISTS (SELECT 1 FROM artifact_bundles b
                                WHERE b.organization_id = u.organization_id AND u.sha1 = ANY (b.chunks)))::int AS chunks`,
    [cutoffs.events, cutoffs.outcomes, cutoffs.chunks],
  );
  const r = result.rows[0];
  return {
    eventIds: r.event_ids,
    defaultEvents: r.default_events,
    outcomes: r.outcomes,
    uploadChunks: r.chunks,
  };
}

/** Counts a project's attachments and expired issues older than `before` (for `--dry-run`). */
export async function countExpiredProjectRows(
  db: Queryable,
  projectId: number,
  before: Date,
): Promise<{ attachments: number; issues: number }> {
  const result = await db.query(
    `SELECT (SELECT count(*) FROM attachments WHERE project_id = $1 AND created_at < $2)::int AS attachments,
            (SELECT count(*) FROM issues i WHERE project_id = $1 AND last_seen < $2
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.issue_id = i.id AND e.received_at >= $2))::int AS issues`,
    [projectId, before],
  );
  return { attachments: result.rows[0].attachments, issues: result.rows[0].issues };
}
