import type pg from "pg";
import type { Queryable } from "../database.ts";
import { payloadOfRow } from "../event-payload.ts";
import type { NewIssue } from "./issue-grouping.ts";
import { createIssue } from "./issue-grouping.ts";

/**
 * Merge and unmerge (Sentry's `issues/merge.py` and `tasks/unmerge.py`),
 * each one transaction on the caller's client. Lock order, shared with the
 * worker's batches (`lockIssues`): issue rows first, in id order, before
 * any hash, user or event row; then the project row (a new issue's short
 * id); then hashes, users and events. So a merge or unmerge and a batch
 * grouping events into the same issues queue behind each other and never
 * deadlock, and a batch that lost the race sees the new owners and runs
 * again (docs/architecture.md §3.8).
 */

/** A merge's outcome, in Sentry's shape: the surviving issue and the ones merged into it. */
export type MergeResult = { parentId: number; childIds: number[] };

/**
 * Merges the live issues of project `projectId` among `issueIds` into one.
 * The parent is Sentry's pick: the most times seen, then the highest id
 * (`handle_merge` sorts by `(times_seen, id)`, descending); children are in
 * that order too. Every hash of the children goes to the parent (so later
 * events of those hashes join it), their events and users follow, the
 * parent's counts, first and last seen and releases combine all of them,
 * and each child (and every issue merged into a child before) records the
 * parent in `merged_into_id`. Returns null, changing nothing, when fewer
 * than two of the ids are live issues of the project.
 */
export async function mergeIssues(
  client: pg.PoolClient,
  projectId: number,
  issueIds: number[],
): Promise<MergeResult | null> {
  const locked = await client.query(
    `SELECT id, times_seen FROM issues
      WHERE id = ANY($1) AND project_id = $2 AND merged_into_id IS NULL
      ORDER BY id FOR UPDATE`,
    [[...new Set(issueIds)].sort((a, b) => a - b), projectId],
  );
  if (locked.rows.length < 2) return null;
  const ranked = locked.rows
    .map((r) => ({ id: Number(r.id), timesSeen: Number(r.times_seen) }))
    .sort((a, b) => b.timesSeen - a.timesSeen || b.id - a.id);
  const [parent, ...children] = ranked as [(typeof ranked)[0], ...typeof ranked];
  const childIds = children.map((c) => c.id);
  await client.query(
    "UPDATE issue_hashes SET issue_id = $1 WHERE project_id = $2 AND issue_id = ANY($3)",
    [parent.id, projectId, childIds],
  );
  await client.query(
    `INSERT INTO issue_users (issue_id, user_key)
     SELECT $1, user_key FROM issue_users WHERE issue_id = ANY($2)
      ORDER BY user_key
     ON CONFLICT DO NOTHING`,
    [parent.id, childIds],
  );
  // Tag values (migration 0010) add up into the parent; the children keep none.
  await client.query(
    `INSERT INTO issue_tag_values AS t (issue_id, project_id, key, value, times_seen, first_seen, last_seen)
     SELECT $1, $2, key, value, sum(times_seen), min(first_seen), max(last_seen)
       FROM issue_tag_values WHERE issue_id = ANY($3)
      GROUP BY key, value ORDER BY key, value
     ON CONFLICT (issue_id, key, value) DO UPDATE
        SET times_seen = t.times_seen + excluded.times_seen,
            first_seen = LEAST(t.first_seen, excluded.first_seen),
            last_seen = GREATEST(t.last_seen, excluded.last_seen)`,
    [parent.id, projectId, childIds],
  );
  await client.query("DELETE FROM issue_tag_values WHERE issue_id = ANY($1)", [childIds]);
  await client.query(
    "UPDATE events SET issue_id = $1 WHERE project_id = $2 AND issue_id = ANY($3)",
    [parent.id, projectId, childIds],
  );
  const all = [parent.id, ...childIds];
  await client.query(
    `UPDATE issues p
        SET times_seen = s.times_seen, first_seen = s.first_seen, last_seen = s.last_seen,
            first_release = COALESCE(s.first_release, p.first_release),
            last_release = COALESCE(s.last_release, p.last_release),
            user_count = (SELECT count(*) FROM issue_users u WHERE u.issue_id = p.id)
       FROM (SELECT sum(times_seen) AS times_seen, min(first_seen) AS first_seen,
                    max(last_seen) AS last_seen,
                    (array_agg(first_release ORDER BY first_seen)
                      FILTER (WHERE first_release IS NOT NULL))[1] AS first_release,
                    (array_agg(last_release ORDER BY last_seen DESC)
                      FILTER (WHERE last_release IS NOT NULL))[1] AS last_release
               FROM issues WHERE id = ANY($2)) s
      WHERE p.id = $1`,
    [parent.id, all],
  );
  await client.query(
    "UPDATE issues SET merged_into_id = $1 WHERE id = ANY($2) OR merged_into_id = ANY($2)",
    [parent.id, childIds],
  );
  return { parentId: parent.id, childIds };
}

/** One of an issue's hashes with its latest event's key (null: no stored event names it first). */
export type IssueHash = {
  hash: string;
  variant: string;
  latestEvent: { eventId: string; receivedAt: Date } | null;
  /** Stored events of the issue whose primary hash this is (what an unmerge of it moves), at most `HASH_EVENT_COUNT_CAP`. */
  eventCount: number;
};

/** Most events counted per hash: a page of hashes of a huge issue stays a bounded read. */
export const HASH_EVENT_COUNT_CAP = 10_000;

/**
 * The hashes issue `issueId` owns, ordered as Sentry's GroupHashesEndpoint
 * orders them (latest event first), hashes no stored event has as its
 * primary hash last, then by hash; a page of `limit` from `offset`.
 */
export async function listIssueHashes(
  db: Queryable,
  issueId: number,
  limit: number,
  offset: number,
): Promise<IssueHash[]> {
  const result = await db.query(
    `SELECT h.hash, h.variant, le.event_id::text AS event_id, le.received_at,
            (SELECT count(*) FROM (SELECT 1 FROM events e
              WHERE e.issue_id = h.issue_id AND e.project_id = h.project_id
                AND e.primary_hash = h.hash LIMIT $4) n) AS event_count
       FROM issue_hashes h
       LEFT JOIN LATERAL (
         SELECT e.event_id, e.received_at FROM events e
          WHERE e.issue_id = h.issue_id AND e.project_id = h.project_id AND e.primary_hash = h.hash
          ORDER BY e.received_at DESC LIMIT 1) le ON true
      WHERE h.issue_id = $1
      ORDER BY le.received_at DESC NULLS LAST, h.hash
      LIMIT $2 OFFSET $3`,
    [issueId, limit, offset, HASH_EVENT_COUNT_CAP],
  );
  return result.rows.map((r) => ({
    hash: r.hash as string,
    variant: r.variant as string,
    latestEvent:
      r.event_id === null
        ? null
        : {
            eventId: (r.event_id as string).replaceAll("-", ""),
            receivedAt: r.received_at as Date,
          },
    eventCount: Number(r.event_count),
  }));
}

/** An unmerge's outcome: the new issue and the events that moved to it. */
export type UnmergeResult = { issueId: number; events: number };

/** Why an unmerge did nothing: the issue is gone (merged meanwhile) or owns none of the hashes. */
export type UnmergeRefusal = "issue-merged" | "no-such-hash";

/**
 * Moves `hashes` of issue `issueId` (project `projectId`) out to one new
 * issue, with the events whose primary hash is among them (Sentry's
 * unmerge: several hashes end in one new issue together). Later events of
 * those hashes group into the new issue. The new issue is described by
 * `describe` from the newest moved event's payload (or, with no event, is a
 * copy of the old issue's title), counts the moved events, and takes their
 * first and last seen; the old issue loses them from its count, and its
 * first and last seen become those of the events it keeps. Users stay
 * counted on the old issue (events do not record their user apart from the
 * payload). Hashes the issue does not own are ignored; when it owns none,
 * nothing changes.
 */
export async function unmergeHashes(
  client: pg.PoolClient,
  projectId: number,
  issueId: number,
  hashes: string[],
  describe: (payload: Record<string, unknown> | null, receivedAt: Date | null) => NewIssue,
): Promise<UnmergeResult | UnmergeRefusal> {
  const issue = await client.query(
    "SELECT merged_into_id FROM issues WHERE id = $1 AND project_id = $2 FOR UPDATE",
    [issueId, projectId],
  );
  if (issue.rows.length === 0 || issue.rows[0].merged_into_id !== null) return "issue-merged";
  const owned = await client.query(
    "SELECT hash FROM issue_hashes WHERE project_id = $1 AND issue_id = $2 AND hash = ANY($3)",
    [projectId, issueId, hashes],
  );
  const moving = owned.rows.map((r) => r.hash as string).sort();
  if (moving.length === 0) return "no-such-hash";
  const latest = await client.query(
    `SELECT payload, payload_compressed, received_at FROM events
      WHERE issue_id = $1 AND project_id = $2 AND primary_hash = ANY($3)
      ORDER BY received_at DESC LIMIT 1`,
    [issueId, projectId, moving],
  );
  const row = latest.rows[0];
  let payload: Record<string, unknown> | null = null;
  if (row) {
    try {
      payload = payloadOfRow({ payload: row.payload, payloadCompressed: row.payload_compressed });
    } catch {
      payload = null;
    }
  }
  const created = await createIssue(client, describe(payload, row ? row.received_at : null));
  await client.query(
    "UPDATE issue_hashes SET issue_id = $1 WHERE project_id = $2 AND issue_id = $3 AND hash = ANY($4)",
    [created, projectId, issueId, moving],
  );
  const moved = await client.query(
    `WITH moved AS (
       UPDATE events SET issue_id = $1
        WHERE issue_id = $2 AND project_id = $3 AND primary_hash = ANY($4)
       RETURNING "timestamp")
     SELECT count(*) AS n, min("timestamp") AS first_seen, max("timestamp") AS last_seen FROM moved`,
    [created, issueId, projectId, moving],
  );
  const n = Number(moved.rows[0].n);
  if (n > 0) {
    await client.query(
      "UPDATE issues SET times_seen = $2, first_seen = $3, last_seen = $4 WHERE id = $1",
      [created, n, moved.rows[0].first_seen, moved.rows[0].last_seen],
    );
    await client.query(
      `UPDATE issues i
          SET times_seen = GREATEST(i.times_seen - $2, 0),
              first_seen = COALESCE(k.first_seen, i.first_seen),
              last_seen = COALESCE(k.last_seen, i.last_seen)
         FROM (SELECT min("timestamp") AS first_seen, max("timestamp") AS last_seen
                 FROM events WHERE issue_id = $1 AND project_id = $3) k
        WHERE i.id = $1`,
      [issueId, n, projectId],
    );
  }
  return { issueId: created, events: n };
}
