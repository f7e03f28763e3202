import type pg from "pg";

export type UnprocessedEvent = { projectId: number; eventId: string; receivedAt: Date };

/**
 * Events stored at least `minAgeMs` ago and not yet processed, in
 * (received_at, project, event id) order, starting after `after` (the last
 * event of the previous page; null for the first): what the sweeper enqueues
 * again after Redis lost its jobs. Paging by key means a backlog larger
 * than one page is walked through once, not listed from its start forever.
 */
export async function listUnprocessedEvents(
  pool: pg.Pool,
  minAgeMs: number,
  limit: number,
  after: UnprocessedEvent | null,
): Promise<UnprocessedEvent[]> {
  const result = await pool.query(
    `SELECT project_id, event_id::text AS event_id, received_at FROM events
      WHERE processed_at IS NULL AND received_at < now() - make_interval(secs => $1 / 1000.0)
        AND ($3::timestamptz IS NULL OR (received_at, project_id, event_id) > ($3, $4, $5::uuid))
      ORDER BY received_at, project_id, event_id LIMIT $2`,
    [minAgeMs, limit, after?.receivedAt ?? null, after?.projectId ?? null, after?.eventId ?? null],
  );
  return result.rows.map((r) => ({
    projectId: Number(r.project_id),
    eventId: (r.event_id as string).replaceAll("-", ""),
    receivedAt: r.received_at as Date,
  }));
}
