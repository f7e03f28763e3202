/**
 * The disk-and-Postgres limit: durable `COPY` of the same payloads into a
 * table like `events` (same columns and key), 500 rows per COPY on 4
 * connections, `synchronous_commit` on. Prints rows per second.
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { buildEvent, newEventId, type PayloadKind } from "./payloads.ts";

const { url, kind, seconds } = JSON.parse(process.argv[2] as string) as {
  url: string;
  kind: PayloadKind;
  seconds: number;
};
const ROWS_PER_COPY = 500;
const CONNECTIONS = 4;
const pool = new pg.Pool({ connectionString: url, max: CONNECTIONS });
await pool.query(
  "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE events INCLUDING DEFAULTS, PRIMARY KEY (project_id, event_id, received_at))",
);
const templates = Array.from({ length: 200 }, (_, i) =>
  JSON.stringify(buildEvent(kind, newEventId(), i)),
);
const csv = (text: string) => `"${text.replaceAll('"', '""')}"`;

let rows = 0;
const deadline = Date.now() + seconds * 1000;
const started = Date.now();
await Promise.all(
  Array.from({ length: CONNECTIONS }, async () => {
    const client = await pool.connect();
    try {
      while (Date.now() < deadline) {
        const now = new Date().toISOString();
        const lines = Array.from({ length: ROWS_PER_COPY }, (_, i) => {
          const id = crypto.randomUUID();
          return `1,${id},${now},${now},1,${csv(templates[i % templates.length] as string)}\n`;
        });
        await pipeline(
          Readable.from(lines),
          client.query(
            copyFrom(
              'COPY bench_copy (project_id, event_id, received_at, "timestamp", key_id, payload) FROM STDIN WITH (FORMAT csv)',
            ),
          ),
        );
        rows += ROWS_PER_COPY;
      }
    } finally {
      client.release();
    }
  }),
);
const elapsed = (Date.now() - started) / 1000;
const size = await pool.query("SELECT pg_total_relation_size('bench_copy') AS bytes");
await pool.query("DROP TABLE bench_copy");
await pool.end();
console.log(
  JSON.stringify({
    rows,
    seconds: elapsed,
    perSecond: rows / elapsed,
    bytesPerRow: Number(size.rows[0].bytes) / rows,
  }),
);
