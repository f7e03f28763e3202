import type pg from "pg";
import { withTransaction } from "./database.ts";
import { CONCURRENT_CREATE_CODES } from "./migrate.ts";

const DAY_MS = 86_400_000;
/** How long creating a partition may wait for its lock on `events` before it gives up. */
const PARTITION_LOCK_TIMEOUT_MS = 2_000;

/** `events_p20261123` for the UTC day that holds `day`. */
function eventPartitionName(day: Date): string {
  return `events_p${day.toISOString().slice(0, 10).replaceAll("-", "")}`;
}

/**
 * Creates the daily partitions of `events` from `daysBehind` days before
 * `now` to `daysAhead` days after it (UTC days), each under `lock_timeout`
 * so that it never queues behind ingest. Existing partitions are kept, also
 * when another node creates one at the same moment. Rows of a day with no
 * partition land in `events_default`. Throws other database errors (a lock
 * timeout, or a day that already has rows in `events_default`).
 */
export async function ensureEventPartitions(
  pool: pg.Pool,
  now: Date,
  daysBehind: number,
  daysAhead: number,
): Promise<string[]> {
  const created: string[] = [];
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  for (let offset = -daysBehind; offset <= daysAhead; offset++) {
    const from = new Date(today + offset * DAY_MS);
    const to = new Date(from.getTime() + DAY_MS);
    const name = eventPartitionName(from);
    const exists = await pool.query("SELECT 1 FROM pg_class WHERE relname = $1", [name]);
    if (exists.rowCount) continue;
    try {
      await withTransaction(
        pool,
        ({ client }) =>
          client.query(
            `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF events
             FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
          ),
        { lockTimeoutMs: PARTITION_LOCK_TIMEOUT_MS },
      );
      created.push(name);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (!CONCURRENT_CREATE_CODES.has(code ?? "")) throw error;
    }
  }
  return created;
}
