import type pg from "pg";

export type UnprocessedEvent = { projectId: number; eventId: string; receivedAt: Date };

/**
 * Events stored at least `minAgeMs` ago and not yet processed, oldest first:
 * what the sweeper enqueues again after Redis lost its jobs.
 */
export async function listUnprocessedEvents(
  pool: pg.Pool,
  minAgeMs: number,
  limit: number,
): Promise<UnprocessedEvent[]> {
  const result = await pool.query(
    `SELECT project_id, event_id::text AS event_id, received_at FROM events
      WHERE processed_at IS NULL AND received_at < now() - make_interval(secs => $1 / 1000.0)
      ORDER BY received_at LIMIT $2`,
    [minAgeMs, limit],
  );
  return result.rows.map((r) => ({
    projectId: Number(r.project_id),
    eventId: (r.event_id as string).replaceAll("-", ""),
    receivedAt: r.received_at as Date,
  }));
}
