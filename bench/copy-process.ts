/**
 * The disk-and-Postgres limit: durable `COPY` of the same payloads into a
 * table like `events` (same columns and key), 500 rows per COPY on 4
 * connections, `synchronous_commit` on. The rows are built before the clock
 * starts (each COPY only writes fresh event ids into its pre-built buffer),
 * so the client is not what bounds it: the JSON it prints carries the
 * client's and Postgres's CPU during the COPYs, in cores, to show which one
 * saturates (issue #16).
 */

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { buildEvent, newEventId, type PayloadKind } from "./payloads.ts";
import { measureCpu, startPostgresCpu, stealSecondsOfMachine } from "./process-cpu.ts";

const { url, kind, seconds } = JSON.parse(process.argv[2] as string) as {
  url: string;
  kind: PayloadKind;
  seconds: number;
};
const ROWS_PER_COPY = 500;
const CONNECTIONS = 4;
const ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000";
const pool = new pg.Pool({ connectionString: url, max: CONNECTIONS });
await pool.query(
  "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE events INCLUDING DEFAULTS, PRIMARY KEY (project_id, event_id, received_at))",
);
const templates = Array.from({ length: 200 }, (_, i) =>
  JSON.stringify(buildEvent(kind, newEventId(), i)),
);
const csv = (text: string) => `"${text.replaceAll('"', '""')}"`;

/** One COPY's rows as CSV bytes, and where each row's event id sits in them. */
function buildChunk(): { bytes: Buffer; idOffsets: number[] } {
  const now = new Date().toISOString();
  const parts: Buffer[] = [];
  const idOffsets: number[] = [];
  let length = 0;
  for (let i = 0; i < ROWS_PER_COPY; i++) {
    const prefix = "1,";
    idOffsets.push(length + prefix.length);
    const line = Buffer.from(
      `${prefix}${ID_PLACEHOLDER},${now},${now},1,${csv(templates[i % templates.length] as string)}\n`,
    );
    parts.push(line);
    length += line.length;
  }
  return { bytes: Buffer.concat(parts), idOffsets };
}

const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => pool.connect()));
const chunks = clients.map(() => buildChunk());
const postgresCpu = await startPostgresCpu(url);
let rows = 0;
const cpu = measureCpu({
  client: () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  },
  postgres: postgresCpu.read,
  steal: stealSecondsOfMachine,
});
const started = Date.now();
const deadline = started + seconds * 1000;
await Promise.all(
  clients.map(async (client, c) => {
    const chunk = chunks[c] as { bytes: Buffer; idOffsets: number[] };
    while (Date.now() < deadline) {
      for (const offset of chunk.idOffsets)
        chunk.bytes.write(crypto.randomUUID(), offset, "latin1");
      await pipeline(
        Readable.from([chunk.bytes]),
        client.query(
          copyFrom(
            'COPY bench_copy (project_id, event_id, received_at, "timestamp", key_id, payload) FROM STDIN WITH (FORMAT csv)',
          ),
        ),
      );
      rows += ROWS_PER_COPY;
    }
  }),
);
const elapsed = (Date.now() - started) / 1000;
const cores = cpu.stop();
await postgresCpu.stop();
for (const client of clients) client.release();
const size = await pool.query("SELECT pg_total_relation_size('bench_copy') AS bytes");
await pool.query("DROP TABLE bench_copy");
await pool.end();
console.log(
  JSON.stringify({
    rows,
    seconds: elapsed,
    perSecond: rows / elapsed,
    bytesPerRow: Number(size.rows[0].bytes) / rows,
    cores,
  }),
);
