import type { Queryable } from "../database.ts";

/** What `sluice upgrade verify` compares: the last minutes against the hour before them. */
export type TrafficStats = {
  /** Events received in the last `windowMinutes`, and in the 60 minutes before that window. */
  recentEvents: number;
  baselineEvents: number;
  /** Processing failures (`event_failures.last_failed_at`) in the same two spans. */
  recentFailures: number;
  baselineFailures: number;
  /** Events not processed yet (and not given up on), and the age of the oldest, in seconds (0: none). */
  unprocessed: number;
  oldestUnprocessedSeconds: number;
};

/**
 * Counts events and processing failures of the last `windowMinutes` and of
 * the hour before, and the processing backlog, by the database's clock.
 * Reads the `received_at` range of `events` (its partition key) and the
 * partial index of unprocessed events; bounded by the window, not the table.
 */
export async function trafficStats(db: Queryable, windowMinutes: number): Promise<TrafficStats> {
  const result = await db.query(
    `WITH bounds AS (
       SELECT now() - make_interval(mins => $1) AS recent_from,
              now() - make_interval(mins => $1 + 60) AS baseline_from)
     SELECT
       (SELECT count(*) FROM events, bounds WHERE received_at >= recent_from)::int AS recent_events,
       (SELECT count(*) FROM events, bounds
         WHERE received_at >= baseline_from AND received_at < recent_from)::int AS baseline_events,
       (SELECT count(*) FROM event_failures, bounds WHERE last_failed_at >= recent_from)::int AS recent_failures,
       (SELECT count(*) FROM event_failures, bounds
         WHERE last_failed_at >= baseline_from AND last_failed_at < recent_from)::int AS baseline_failures,
       (SELECT count(*) FROM events e WHERE e.processed_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM event_failures f WHERE f.project_id = e.project_id
                             AND f.event_id = e.event_id AND f.failed_at IS NOT NULL))::int AS unprocessed,
       coalesce((SELECT extract(epoch FROM now() - min(e.received_at)) FROM events e
                  WHERE e.processed_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM event_failures f WHERE f.project_id = e.project_id
                                      AND f.event_id = e.event_id AND f.failed_at IS NOT NULL)), 0)::float8
         AS oldest_unprocessed`,
    [windowMinutes],
  );
  const r = result.rows[0];
  return {
    recentEvents: r.recent_events,
    baselineEvents: r.baseline_events,
    recentFailures: r.recent_failures,
    baselineFailures: r.baseline_failures,
    unprocessed: r.unprocessed,
    oldestUnprocessedSeconds: Number(r.oldest_unprocessed),
  };
}
