import type pg from "pg";
import type { Queryable } from "../database.ts";

/**
 * `issue_tag_values` (migration 0010): per issue, every tag value its events
 * carried with a count and first/last seen (Sentry's GroupTagValue). The
 * worker writes it while grouping; search and the issue page read it.
 */

/** What a batch adds to one (issue, key, value). */
export type IssueTagCount = {
  issueId: number;
  projectId: number;
  key: string;
  value: string;
  events: number;
  firstSeen: Date;
  lastSeen: Date;
};

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Counts a batch's tag values into `issue_tag_values`, one row per (issue,
 * key, value) (callers aggregate). Rows go in in key order, so concurrent
 * batches wait instead of deadlocking. Run inside the grouping transaction,
 * after the issues are locked.
 */
export async function countIssueTagValues(
  client: pg.PoolClient,
  counts: IssueTagCount[],
): Promise<void> {
  if (counts.length === 0) return;
  const sorted = [...counts].sort(
    (a, b) => a.issueId - b.issueId || compareText(a.key, b.key) || compareText(a.value, b.value),
  );
  // An event's tags share its time: one ISO string per distinct time, not
  // two per row (a typical event has 11 tags: 22 calls of 0.65 µs each).
  const isoTimes = new Map<number, string>();
  const iso = (at: Date) => {
    let text = isoTimes.get(at.getTime());
    if (text === undefined) {
      text = at.toISOString();
      isoTimes.set(at.getTime(), text);
    }
    return text;
  };
  await client.query(
    `INSERT INTO issue_tag_values AS t (issue_id, project_id, key, value, times_seen, first_seen, last_seen)
     SELECT c.i, c.p, c.k, c.v, c.n, c.f, c.l
       FROM json_to_recordset($1::json) AS c(i bigint, p bigint, k text, v text, n bigint, f timestamptz, l timestamptz)
     ON CONFLICT (issue_id, key, value) DO UPDATE
        SET times_seen = t.times_seen + excluded.times_seen,
            first_seen = LEAST(t.first_seen, excluded.first_seen),
            last_seen = GREATEST(t.last_seen, excluded.last_seen)`,
    [
      JSON.stringify(
        sorted.map((c) => ({
          i: c.issueId,
          p: c.projectId,
          k: c.key,
          v: c.value,
          n: c.events,
          f: iso(c.firstSeen),
          l: iso(c.lastSeen),
        })),
      ),
    ],
  );
}

/** One tag key of an issue: how many of its events had it, and its top values. */
export type IssueTagSummary = {
  key: string;
  /** Events that carried the key (the sum over its values). */
  total: number;
  top: { value: string; count: number }[];
};

/**
 * The issue's tag keys with the most events first (at most `maxKeys`), each
 * with its `maxValues` most frequent values: Sentry's tag summaries
 * (`GET /issues/{id}/tags/`). Reads the issue's own rows of
 * `issue_tag_values` (its primary key), never its events. Empty for an
 * issue whose events were all grouped before migration 0010.
 */
export async function summarizeIssueTags(
  db: Queryable,
  issueId: number,
  maxKeys: number,
  maxValues: number,
): Promise<IssueTagSummary[]> {
  const result = await db.query(
    `WITH ranked AS (
       SELECT key, value, times_seen,
              sum(times_seen) OVER (PARTITION BY key) AS key_total,
              row_number() OVER (PARTITION BY key ORDER BY times_seen DESC, value) AS rank
         FROM issue_tag_values WHERE issue_id = $1),
     keys AS (
       SELECT key, key_total FROM ranked WHERE rank = 1
        ORDER BY key_total DESC, key LIMIT $2)
     SELECT r.key, r.value, r.times_seen::float8 AS n, r.key_total::float8 AS total
       FROM ranked r JOIN keys k ON k.key = r.key
      WHERE r.rank <= $3
      ORDER BY r.key_total DESC, r.key, r.rank`,
    [issueId, maxKeys, maxValues],
  );
  const out: IssueTagSummary[] = [];
  for (const r of result.rows) {
    let last = out.at(-1);
    if (!last || last.key !== r.key) {
      last = { key: r.key as string, total: Number(r.total), top: [] };
      out.push(last);
    }
    last.top.push({ value: r.value as string, count: Number(r.n) });
  }
  return out;
}
