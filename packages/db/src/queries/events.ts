import { and, asc, desc, eq, gte, inArray, type SQL, sql } from "drizzle-orm";
import type { Orm, Queryable } from "../database.ts";
import { payloadOfRow } from "../event-payload.ts";
import { eventIds, events } from "../schema.ts";

/** An event row with its payload read from whichever column holds it (event-payload.ts). */
export type StoredEventRow = Omit<typeof events.$inferSelect, "payload" | "payloadCompressed"> & {
  payload: Record<string, unknown>;
};

/**
 * What the API shows of an event whose stored payload cannot be read (the
 * worker marked it failed): no data, and Sentry's `invalid_data` processing
 * error (`sentry/models/eventerror.py`), so the event stays readable.
 */
const UNREADABLE_PAYLOAD = {
  errors: [{ type: "invalid_data", name: "payload", reason: "the stored payload cannot be read" }],
};

function decoded({
  payload,
  payloadCompressed,
  ...rest
}: typeof events.$inferSelect): StoredEventRow {
  try {
    return { ...rest, payload: payloadOfRow({ payload, payloadCompressed }) };
  } catch {
    return { ...rest, payload: structuredClone(UNREADABLE_PAYLOAD) };
  }
}

/**
 * A project's own, shorter retention, applied when events are read: its
 * old events stay in their day partition until the instance's retention
 * drops it (docs/operations.md §9.2), and must not be shown meanwhile.
 * Projects without one (null) see every stored event (36,500 days).
 */
const keptSince = (projectId: SQL) =>
  sql`now() - make_interval(days => coalesce((SELECT retention_days FROM projects WHERE id = ${projectId}), 36500)::int)`;

/** An issue's events within its project's own retention. */
function keptEventsOf(issueId: number) {
  return and(
    eq(events.issueId, issueId),
    gte(events.receivedAt, keptSince(sql`(SELECT project_id FROM issues WHERE id = ${issueId})`)),
  );
}

/** Events of an issue, newest first (within the project's own retention). */
export async function listIssueEvents(
  orm: Orm,
  issueId: number,
  limit: number,
  offset: number,
): Promise<StoredEventRow[]> {
  const rows = await orm
    .select()
    .from(events)
    .where(keptEventsOf(issueId))
    .orderBy(desc(events.receivedAt), desc(events.eventId))
    .limit(limit)
    .offset(offset);
  return rows.map(decoded);
}

/**
 * The latest or the oldest event of an issue (by received time, then event
 * id) within the project's own retention; null when it has none. One probe
 * of `events_issue_received` per day partition, whatever the issue's size:
 * not an offset of `times_seen`, which would read all of a big issue's
 * events, and which retention makes larger than what is stored.
 */
export async function findIssueEdgeEvent(
  orm: Orm,
  issueId: number,
  which: "latest" | "oldest",
): Promise<StoredEventRow | null> {
  const order = which === "latest" ? desc : asc;
  const rows = await orm
    .select()
    .from(events)
    .where(keptEventsOf(issueId))
    .orderBy(order(events.receivedAt), order(events.eventId))
    .limit(1);
  return rows[0] ? decoded(rows[0]) : null;
}

/** Events of an issue by event id (32 hex or dashed uuid); absent ones are left out. */
export async function findIssueEvents(
  orm: Orm,
  issueId: number,
  eventIds: string[],
): Promise<StoredEventRow[]> {
  if (eventIds.length === 0) return [];
  const rows = await orm
    .select()
    .from(events)
    .where(and(eq(events.issueId, issueId), inArray(events.eventId, eventIds)));
  return rows.map(decoded);
}

/**
 * One event by project and event id (32 hex), within the project's own retention. Reads `event_ids` first so
 * that the events query touches one day's partition only.
 */
export async function findEvent(
  orm: Orm,
  projectId: number,
  eventId: string,
): Promise<StoredEventRow | null> {
  const ids = await orm
    .select({ receivedAt: eventIds.receivedAt })
    .from(eventIds)
    .where(
      and(
        eq(eventIds.projectId, projectId),
        eq(eventIds.eventId, eventId),
        gte(eventIds.receivedAt, keptSince(sql`${projectId}`)),
      ),
    )
    .limit(1);
  const receivedAt = ids[0]?.receivedAt;
  if (!receivedAt) return null;
  const rows = await orm
    .select()
    .from(events)
    .where(
      and(
        eq(events.projectId, projectId),
        eq(events.eventId, eventId),
        eq(events.receivedAt, receivedAt),
      ),
    )
    .limit(1);
  return rows[0] ? decoded(rows[0]) : null;
}

/** An event the worker gave up on, as `sluice events failed` lists it. */
export type FailedEvent = {
  organization: string;
  project: string;
  projectId: number;
  eventId: string;
  receivedAt: Date;
  failures: number;
  lastError: string;
  failedAt: Date;
};

/** Events marked failed (`event_failures.failed_at`), most recent first, at most `limit`. */
export async function listFailedEvents(db: Queryable, limit: number): Promise<FailedEvent[]> {
  const result = await db.query(
    `SELECT o.slug AS organization, p.slug AS project, f.project_id, f.event_id::text,
            f.received_at, f.failures, f.last_error, f.failed_at
       FROM event_failures f
       JOIN projects p ON p.id = f.project_id
       JOIN organizations o ON o.id = p.organization_id
      WHERE f.failed_at IS NOT NULL
      ORDER BY f.failed_at DESC, f.project_id, f.event_id
      LIMIT $1`,
    [limit],
  );
  return result.rows.map((r) => ({
    organization: r.organization as string,
    project: r.project as string,
    projectId: Number(r.project_id),
    eventId: (r.event_id as string).replaceAll("-", ""),
    receivedAt: r.received_at as Date,
    failures: Number(r.failures),
    lastError: r.last_error as string,
    failedAt: r.failed_at as Date,
  }));
}

/** An event the sweeper may enqueue again. */
export type UnprocessedEvent = { projectId: number; eventId: string; receivedAt: Date };

/**
 * Events stored at least `minAgeMs` ago and not yet processed, in
 * (received_at, project, event id) order, starting after `after` (the last
 * event of the previous page; null for the first): what the sweeper enqueues
 * again after Redis lost its jobs. Paging by key means a backlog larger
 * than one page is walked through once, not listed from its start forever.
 * Events the worker gave up on (`event_failures.failed_at`) are left out:
 * those are never enqueued again.
 */
export async function listEventsToSweep(
  db: Queryable,
  minAgeMs: number,
  limit: number,
  after: UnprocessedEvent | null,
): Promise<UnprocessedEvent[]> {
  const result = await db.query(
    `SELECT e.project_id, e.event_id::text AS event_id, e.received_at FROM events e
      WHERE e.processed_at IS NULL AND e.received_at < now() - make_interval(secs => $1 / 1000.0)
        AND ($3::timestamptz IS NULL OR (e.received_at, e.project_id, e.event_id) > ($3, $4, $5::uuid))
        AND NOT EXISTS (SELECT 1 FROM event_failures f
                         WHERE f.project_id = e.project_id AND f.event_id = e.event_id
                           AND f.failed_at IS NOT NULL)
      ORDER BY e.received_at, e.project_id, e.event_id LIMIT $2`,
    [minAgeMs, limit, after?.receivedAt ?? null, after?.projectId ?? null, after?.eventId ?? null],
  );
  return result.rows.map((r) => ({
    projectId: Number(r.project_id),
    eventId: (r.event_id as string).replaceAll("-", ""),
    receivedAt: r.received_at as Date,
  }));
}
