import type pg from "pg";
import type { Queryable } from "../database.ts";
import {
  compressPayload,
  type PayloadStorage,
  payloadOfRow,
  storageOfRow,
} from "../event-payload.ts";
import { type ResolutionType, resolutionHolds } from "./issue-resolution.ts";

/**
 * Queries the worker runs to group a batch of events: a read without locks,
 * then, on one client inside one transaction, locks, issue lookups and
 * creation, and the counts. Each takes the whole batch, so a batch costs
 * the same few round trips whatever its size.
 */

/** Which stored event: its primary key. `eventId` is 32 hex digits. */
export type EventKey = { projectId: number; eventId: string; receivedAt: Date };

export type EventToProcess = EventKey & {
  /** The payload; `{}` when it cannot be decoded (`decodeError` says why). */
  payload: Record<string, unknown>;
  /** Why the stored payload cannot be read (corrupt compressed data, bad JSON), else null. */
  decodeError: string | null;
  /** When the worker gave up on this event (`event_failures.failed_at`), else null. */
  failedAt: Date | null;
  /** How the row keeps its payload (event-payload.ts `storageOfRow`). */
  storedAs: PayloadStorage;
  timestamp: Date;
  processedAt: Date | null;
};

/** Orders strings by code unit, as the rows' keys are inserted (a lock order, not a collation). */
const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A stable string for an event key (a map key). */
export function eventKeyString(key: EventKey): string {
  return `${key.projectId}/${key.eventId}/${key.receivedAt.getTime()}`;
}

const keysJson = (keys: EventKey[]) =>
  JSON.stringify(
    keys.map((k) => ({ p: k.projectId, e: k.eventId, r: k.receivedAt.toISOString() })),
  );

/**
 * Loads events without locking them (processing reads before it groups);
 * absent ones are left out. A payload that cannot be decoded does not fail
 * the read: that row carries `decodeError` (one poison event must not fail
 * its batch).
 */
export async function readEvents(db: Queryable, keys: EventKey[]): Promise<EventToProcess[]> {
  const result = await db.query(
    `SELECT e.project_id, e.event_id::text, e.received_at, e.payload, e.payload_compressed,
            e."timestamp", e.processed_at, f.failed_at
       FROM json_to_recordset($1::json) AS k(p bigint, e uuid, r timestamptz)
       JOIN events e ON e.project_id = k.p AND e.event_id = k.e AND e.received_at = k.r
       LEFT JOIN event_failures f ON f.project_id = e.project_id AND f.event_id = e.event_id`,
    [keysJson(keys)],
  );
  return result.rows.map((r) => {
    let payload: Record<string, unknown> = {};
    let decodeError: string | null = null;
    const stored = { payload: r.payload, payloadCompressed: r.payload_compressed };
    try {
      payload = payloadOfRow(stored);
    } catch (error) {
      decodeError = (error as Error).message || "the stored payload cannot be read";
    }
    return {
      projectId: Number(r.project_id),
      eventId: (r.event_id as string).replaceAll("-", ""),
      receivedAt: r.received_at as Date,
      payload,
      decodeError,
      failedAt: r.failed_at as Date | null,
      storedAs: storageOfRow(stored),
      timestamp: r.timestamp as Date,
      processedAt: r.processed_at as Date | null,
    };
  });
}

/** One processing failure of an event: its error text (bounded, no payload data). */
export type EventFailure = EventKey & {
  error: string;
  /** A failure no retry can fix (undecodable payload, normalize error): fail the event now. */
  permanent: boolean;
};

/** Longest `last_error` stored, in characters. */
const MAX_ERROR_TEXT = 300;

/**
 * Counts one failure for each event (each at most once in `failures`) and
 * marks it failed (`failed_at`) when the failure is permanent or its count
 * reaches `maxFailures`. Returns the events this call marked failed, as
 * `eventKeyString`s, with every event's failure count.
 */
export async function recordEventFailures(
  db: Queryable,
  failures: EventFailure[],
  maxFailures: number,
): Promise<{ newlyFailed: Set<string>; counts: Map<string, number> }> {
  const newlyFailed = new Set<string>();
  const counts = new Map<string, number>();
  if (failures.length === 0) return { newlyFailed, counts };
  const result = await db.query(
    `INSERT INTO event_failures AS f (project_id, event_id, received_at, failures, last_error,
                                      last_failed_at, failed_at)
     SELECT d.p, d.e, d.r, 1, d.m, now(), CASE WHEN d.x OR $2 <= 1 THEN now() END
       FROM json_to_recordset($1::json) AS d(p bigint, e uuid, r timestamptz, m text, x boolean)
     ON CONFLICT (project_id, event_id) DO UPDATE
        SET failures = f.failures + 1,
            last_error = excluded.last_error,
            last_failed_at = now(),
            failed_at = COALESCE(f.failed_at,
              CASE WHEN excluded.failed_at IS NOT NULL OR f.failures + 1 >= $2 THEN now() END)
     RETURNING project_id, event_id::text, received_at, failures, failed_at = now() AS newly_failed`,
    [
      JSON.stringify(
        dedupe(failures).map((f) => ({
          p: f.projectId,
          e: f.eventId,
          r: f.receivedAt.toISOString(),
          m: f.error.slice(0, MAX_ERROR_TEXT),
          x: f.permanent,
        })),
      ),
      maxFailures,
    ],
  );
  for (const r of result.rows) {
    const key = eventKeyString({
      projectId: Number(r.project_id),
      eventId: (r.event_id as string).replaceAll("-", ""),
      receivedAt: r.received_at as Date,
    });
    counts.set(key, Number(r.failures));
    if (r.newly_failed) newlyFailed.add(key);
  }
  return { newlyFailed, counts };
}

/** One row per (project, event id): a second would make ON CONFLICT touch a row twice. */
function dedupe(failures: EventFailure[]): EventFailure[] {
  const byKey = new Map<string, EventFailure>();
  for (const f of failures) byKey.set(`${f.projectId}/${f.eventId}`, f);
  return [...byKey.values()].sort(
    (a, b) => a.projectId - b.projectId || compareText(a.eventId, b.eventId),
  );
}

/**
 * Locks the events of `keys` that are still unprocessed, in key order (so
 * that two batches never wait on each other in a cycle), until the
 * transaction ends; returns their key strings.
 */
export async function lockUnprocessedEvents(
  client: pg.PoolClient,
  keys: EventKey[],
): Promise<Set<string>> {
  const result = await client.query(
    `SELECT e.project_id, e.event_id::text, e.received_at
       FROM json_to_recordset($1::json) AS k(p bigint, e uuid, r timestamptz)
       JOIN events e ON e.project_id = k.p AND e.event_id = k.e AND e.received_at = k.r
      WHERE e.processed_at IS NULL
      ORDER BY e.project_id, e.event_id, e.received_at
        FOR UPDATE OF e`,
    [keysJson(keys)],
  );
  return new Set(
    result.rows.map((r) =>
      eventKeyString({
        projectId: Number(r.project_id),
        eventId: (r.event_id as string).replaceAll("-", ""),
        receivedAt: r.received_at as Date,
      }),
    ),
  );
}

/** The issues owning any of the (project, hash) pairs, as `"{projectId}/{hash}" → issue id`. */
export async function findIssuesByHashes(
  client: pg.PoolClient,
  pairs: { projectId: number; hash: string }[],
): Promise<Map<string, number>> {
  if (pairs.length === 0) return new Map();
  const result = await client.query(
    `SELECT h.project_id, h.hash, h.issue_id
       FROM json_to_recordset($1::json) AS k(p bigint, h text)
       JOIN issue_hashes h ON h.project_id = k.p AND h.hash = k.h`,
    [JSON.stringify(pairs.map((p) => ({ p: p.projectId, h: p.hash })))],
  );
  return new Map(result.rows.map((r) => [`${r.project_id}/${r.hash}`, Number(r.issue_id)]));
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

/**
 * Locks existing issues in id order (`FOR NO KEY UPDATE`, as
 * `countIssueEvents` does) before the batch inserts any hash or user row
 * referring to them, and returns the ids among them that were merged away.
 * Every transaction that writes issues of a project (the worker's batches,
 * merge, unmerge) takes its issue row locks first and in id order, so none
 * waits for another in a cycle; a merge's `FOR UPDATE` waits for the batch
 * (and the batch for the merge), so a batch never counts into an issue that
 * a merge committed away meanwhile: it sees the merge and runs again.
 */
export async function lockIssues(client: pg.PoolClient, ids: number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const result = await client.query(
    `SELECT id, merged_into_id FROM issues WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`,
    [[...new Set(ids)].sort((a, b) => a - b)],
  );
  return new Set(result.rows.filter((r) => r.merged_into_id !== null).map((r) => Number(r.id)));
}

export type HashClaim = { projectId: number; hash: string; issueId: number; variant: string };

/**
 * Gives each hash to its issue unless an issue owns it already; returns the
 * claims that took, as `"{projectId}/{hash}"`. Rows go in in key order, so
 * two batches claiming the same hashes wait for each other instead of
 * deadlocking.
 */
export async function claimIssueHashes(
  client: pg.PoolClient,
  claims: HashClaim[],
): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const result = await client.query(
    `INSERT INTO issue_hashes (project_id, hash, issue_id, variant)
     SELECT c.p, c.h, c.i, c.v FROM json_to_recordset($1::json) AS c(p bigint, h text, i bigint, v text)
     ON CONFLICT DO NOTHING
     RETURNING project_id, hash`,
    [
      JSON.stringify(
        [...claims]
          .sort((a, b) => a.projectId - b.projectId || compareText(a.hash, b.hash))
          .map((c) => ({ p: c.projectId, h: c.hash, i: c.issueId, v: c.variant })),
      ),
    ],
  );
  return new Set(result.rows.map((r) => `${r.project_id}/${r.hash}`));
}

/**
 * Records users of issues; returns how many were new to each issue. Rows go
 * in in key order (issue, user), so concurrent batches cannot deadlock on them.
 */
export async function addIssueUsers(
  client: pg.PoolClient,
  users: { issueId: number; userKey: string }[],
): Promise<Map<number, number>> {
  const added = new Map<number, number>();
  if (users.length === 0) return added;
  const result = await client.query(
    `INSERT INTO issue_users (issue_id, user_key)
     SELECT u.i, u.k FROM json_to_recordset($1::json) AS u(i bigint, k text)
     ON CONFLICT DO NOTHING
     RETURNING issue_id`,
    [
      JSON.stringify(
        [...users]
          .sort((a, b) => a.issueId - b.issueId || compareText(a.userKey, b.userKey))
          .map((u) => ({ i: u.issueId, k: u.userKey })),
      ),
    ],
  );
  for (const row of result.rows) {
    const id = Number(row.issue_id);
    added.set(id, (added.get(id) ?? 0) + 1);
  }
  return added;
}

/** What a batch adds to one issue. */
export type IssueCount = {
  issueId: number;
  events: number;
  firstSeen: Date;
  lastSeen: Date;
  newUsers: number;
  /** The release of the batch's latest event that had one. */
  lastRelease: string | null;
  /**
   * The distinct releases of the batch's events (null: an event without
   * one): what decides whether an issue resolved in a release regresses.
   */
  releases?: (string | null)[];
};

/**
 * Counts a batch into its issues: times seen, first and last seen, new
 * users, last release; a resolved issue that sees a new event is unresolved
 * again (Sentry's regression). The issue rows are locked in id order first,
 * so concurrent batches queue rather than deadlock, and each issue is
 * written once per batch however many of its events the batch holds.
 *
 * The lock is `FOR NO KEY UPDATE` (what the UPDATE takes anyway), not
 * `FOR UPDATE`: inserting an `issue_users` or `issue_hashes` row takes
 * `FOR KEY SHARE` on its issue (the foreign key check), and `FOR UPDATE`
 * conflicts with that. Two batches that both added a user to one issue
 * would each wait for the other's key share: a deadlock on every hot issue
 * (PostgreSQL docs, "Explicit Locking", row-level lock conflict table).
 *
 * A resolved issue with a release resolution (`resolution_type`, Sentry's
 * GroupResolution) stays resolved for events its resolution covers (see
 * `resolutionHolds`); any other event reopens it.
 *
 * Returns the issues this batch regressed (resolved until now), each with
 * the time it was resolved: what names the regression for alerts.
 */
export async function countIssueEvents(
  client: pg.PoolClient,
  counts: IssueCount[],
): Promise<Map<number, Date>> {
  if (counts.length === 0) return new Map();
  const sorted = [...counts].sort((a, b) => a.issueId - b.issueId);
  const locked = await client.query(
    `SELECT id::int AS id, project_id::int AS project_id, status, resolved_at,
            resolution_type, resolution_release
       FROM issues WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`,
    [sorted.map((c) => c.issueId)],
  );
  const byId = new Map(sorted.map((c) => [c.issueId, c]));
  const resolvedInRelease = locked.rows.filter(
    (r) => r.status === "resolved" && r.resolution_type !== null && r.resolution_release !== null,
  );
  const releaseTimes = await readReleaseTimes(
    client,
    resolvedInRelease.flatMap((r) => [
      { projectId: r.project_id as number, version: r.resolution_release as string },
      ...(byId.get(r.id)?.releases ?? []).flatMap((v) =>
        v === null ? [] : [{ projectId: r.project_id as number, version: v }],
      ),
    ]),
  );
  const regressed = new Map<number, Date>();
  for (const row of locked.rows) {
    if (row.status !== "resolved") continue;
    const count = byId.get(row.id);
    if (row.resolution_type !== null && row.resolution_release !== null && count?.releases) {
      const at = (v: string) => releaseTimes.get(`${row.project_id}/${v}`) ?? null;
      const resolution = {
        type: row.resolution_type as ResolutionType,
        release: row.resolution_release as string,
        releaseAt: at(row.resolution_release),
      };
      const holds = count.releases.every((v) =>
        resolutionHolds(resolution, v === null ? null : { version: v, at: at(v) }),
      );
      if (holds) continue;
    }
    regressed.set(row.id, row.resolved_at ?? new Date(0));
  }
  await client.query(
    `UPDATE issues
        SET times_seen = times_seen + c.n,
            first_seen = LEAST(first_seen, c.f),
            last_seen = GREATEST(last_seen, c.l),
            user_count = user_count + c.u,
            last_release = COALESCE(c.r, last_release),
            status = CASE WHEN c.x THEN 'unresolved' ELSE status END,
            resolved_at = CASE WHEN c.x THEN NULL ELSE resolved_at END,
            resolution_type = CASE WHEN c.x THEN NULL ELSE resolution_type END,
            resolution_release = CASE WHEN c.x THEN NULL ELSE resolution_release END
       FROM json_to_recordset($1::json) AS c(i bigint, n bigint, f timestamptz, l timestamptz, u bigint, r text, x boolean)
      WHERE issues.id = c.i`,
    [
      JSON.stringify(
        sorted.map((c) => ({
          i: c.issueId,
          n: c.events,
          f: c.firstSeen.toISOString(),
          l: c.lastSeen.toISOString(),
          u: c.newUsers,
          r: c.lastRelease,
          x: regressed.has(c.issueId),
        })),
      ),
    ],
  );
  return regressed;
}

/** When each (project, version) release was released or first seen, as `"{projectId}/{version}"`. */
async function readReleaseTimes(
  client: pg.PoolClient,
  wanted: { projectId: number; version: string }[],
): Promise<Map<string, Date>> {
  if (wanted.length === 0) return new Map();
  const result = await client.query(
    `SELECT k.p, k.v, COALESCE(r.date_released, r.created_at) AS at
       FROM json_to_recordset($1::json) AS k(p bigint, v text)
       JOIN projects p ON p.id = k.p
       JOIN releases r ON r.organization_id = p.organization_id AND r.version = k.v`,
    [JSON.stringify(wanted.map((w) => ({ p: w.projectId, v: w.version })))],
  );
  return new Map(result.rows.map((r) => [`${r.p}/${r.v}`, r.at as Date]));
}

/**
 * Marks events processed and links each to its issue (null: no issue, e.g.
 * transactions) with its primary hash; a `payload`, when given, replaces the stored one (the
 * symbolicated event with its raw stack traces and processing errors), in
 * the row's own storage, `storedAs` (as `readEvents` said).
 */
export async function markEventsProcessed(
  client: pg.PoolClient,
  events: (EventKey & {
    issueId: number | null;
    payload: Record<string, unknown> | null;
    storedAs: PayloadStorage;
    /** The event's first group hash (Sentry's primary_hash); null for none. */
    primaryHash?: string | null;
  })[],
): Promise<void> {
  if (events.length === 0) return;
  await client.query(
    `UPDATE events e
        SET issue_id = d.i, processed_at = now(), payload = COALESCE(d.payload, e.payload),
            payload_compressed = COALESCE(decode(d.c, 'base64'), e.payload_compressed),
            primary_hash = d.h
       FROM json_to_recordset($1::json) AS d(p bigint, e uuid, r timestamptz, i bigint, payload jsonb, c text, h text)
      WHERE e.project_id = d.p AND e.event_id = d.e AND e.received_at = d.r`,
    [
      JSON.stringify(
        events.map((e) => ({
          p: e.projectId,
          e: e.eventId,
          r: e.receivedAt.toISOString(),
          i: e.issueId,
          h: e.primaryHash ?? null,
          payload: e.payload && e.storedAs === "jsonb" ? e.payload : null,
          c:
            e.payload && e.storedAs !== "jsonb"
              ? compressPayload(JSON.stringify(e.payload), e.storedAs).toString("base64")
              : null,
        })),
      ),
    ],
  );
}
