import type pg from "pg";

/** Queries the worker runs inside its grouping transaction (one client). */

export type EventToProcess = {
  payload: Record<string, unknown>;
  timestamp: Date;
  receivedAt: Date;
  processedAt: Date | null;
};

/** Loads an event without locking it (processing reads before it groups); null when absent. */
export async function readEvent(
  queryable: pg.Pool | pg.PoolClient,
  projectId: number,
  eventId: string,
  receivedAt: Date,
): Promise<EventToProcess | null> {
  const result = await queryable.query(
    `SELECT payload, "timestamp", received_at AS "receivedAt", processed_at AS "processedAt"
       FROM events WHERE project_id = $1 AND event_id = $2 AND received_at = $3`,
    [projectId, eventId, receivedAt],
  );
  return (result.rows[0] as EventToProcess | undefined) ?? null;
}

/**
 * Locks an event's row until the transaction ends and tells whether it is
 * processed already; null when absent.
 */
export async function lockEvent(
  client: pg.PoolClient,
  projectId: number,
  eventId: string,
  receivedAt: Date,
): Promise<{ processedAt: Date | null } | null> {
  const result = await client.query(
    `SELECT processed_at AS "processedAt"
       FROM events WHERE project_id = $1 AND event_id = $2 AND received_at = $3 FOR UPDATE`,
    [projectId, eventId, receivedAt],
  );
  return (result.rows[0] as { processedAt: Date | null } | undefined) ?? null;
}

/** The issue owning the first of `hashes` (in their order) that any issue owns. */
export async function findIssueByHashes(
  client: pg.PoolClient,
  projectId: number,
  hashes: string[],
): Promise<number | null> {
  const result = await client.query(
    "SELECT hash, issue_id FROM issue_hashes WHERE project_id = $1 AND hash = ANY($2)",
    [projectId, hashes],
  );
  const owner = new Map(result.rows.map((r) => [r.hash as string, Number(r.issue_id)]));
  for (const hash of hashes) {
    const issueId = owner.get(hash);
    if (issueId !== undefined) return issueId;
  }
  return null;
}

export type NewIssue = {
  projectId: number;
  type: string;
  title: string;
  culprit: string;
  level: string;
  platform: string;
  logger: string | null;
  metadata: Record<string, unknown>;
  seenAt: Date;
  release: string | null;
};

/** Inserts an issue with the project's next short id; returns its id. */
export async function createIssue(client: pg.PoolClient, issue: NewIssue): Promise<number> {
  const result = await client.query(
    `WITH counter AS (
       UPDATE projects SET next_short_id = next_short_id + 1 WHERE id = $1
       RETURNING next_short_id - 1 AS short_id)
     INSERT INTO issues (project_id, short_id, type, title, culprit, level, platform, logger,
                         metadata, first_seen, last_seen, first_release, last_release)
     SELECT $1, short_id, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $10 FROM counter
     RETURNING id`,
    [
      issue.projectId,
      issue.type,
      issue.title,
      issue.culprit,
      issue.level,
      issue.platform,
      issue.logger,
      JSON.stringify(issue.metadata),
      issue.seenAt,
      issue.release,
    ],
  );
  return Number(result.rows[0].id);
}

/** Gives the issue every hash no issue owns yet; returns how many it took. */
export async function claimIssueHashes(
  client: pg.PoolClient,
  projectId: number,
  issueId: number,
  hashes: { hash: string; variant: string }[],
): Promise<number> {
  const result = await client.query(
    `INSERT INTO issue_hashes (project_id, hash, issue_id, variant)
     SELECT $1, h.hash, $2, h.variant FROM json_to_recordset($3::json) AS h(hash text, variant text)
     ON CONFLICT DO NOTHING`,
    [projectId, issueId, JSON.stringify(hashes)],
  );
  return result.rowCount ?? 0;
}

/** Records a user of the issue; true when the user is new to it. */
export async function addIssueUser(
  client: pg.PoolClient,
  issueId: number,
  userKey: string,
): Promise<boolean> {
  const result = await client.query(
    "INSERT INTO issue_users (issue_id, user_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [issueId, userKey],
  );
  return result.rowCount === 1;
}

/**
 * Counts one event into its issue: times seen, first and last seen, new
 * users, last release. A resolved issue that sees a new event is unresolved
 * again (Sentry's regression).
 */
export async function countIssueEvent(
  client: pg.PoolClient,
  issueId: number,
  seenAt: Date,
  newUsers: number,
  release: string | null,
): Promise<void> {
  await client.query(
    `UPDATE issues
        SET times_seen = times_seen + 1,
            first_seen = LEAST(first_seen, $2),
            last_seen = GREATEST(last_seen, $2),
            user_count = user_count + $3,
            last_release = COALESCE($4, last_release),
            status = CASE WHEN status = 'resolved' THEN 'unresolved' ELSE status END,
            resolved_at = CASE WHEN status = 'resolved' THEN NULL ELSE resolved_at END
      WHERE id = $1`,
    [issueId, seenAt, newUsers, release],
  );
}

/**
 * Marks the event processed and links it to its issue (null: no issue, e.g.
 * transactions); `payload`, when given, replaces the stored one (the
 * symbolicated event with its raw stack traces and processing errors).
 */
export async function markEventProcessed(
  client: pg.PoolClient,
  projectId: number,
  eventId: string,
  receivedAt: Date,
  issueId: number | null,
  payload: Record<string, unknown> | null = null,
): Promise<void> {
  await client.query(
    `UPDATE events SET issue_id = $4, processed_at = now(), payload = COALESCE($5::jsonb, payload)
      WHERE project_id = $1 AND event_id = $2 AND received_at = $3`,
    [projectId, eventId, receivedAt, issueId, payload === null ? null : JSON.stringify(payload)],
  );
}
