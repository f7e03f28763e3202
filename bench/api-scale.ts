/**
 * `npm run bench:api-scale -- [--events=10000000] [--issues=N] [--days=90]
 * [--requests=60] [--ingest-rate=100] [--reuse] [--no-results]`: the REST
 * API at a platform team's size (issue #16). Fills its own database,
 * `sluice_bench_scale` (dropped and made again unless `--reuse`), on the
 * server side: `--events` events (default 10 million) in `--issues` issues
 * (default events / 100) with a Zipf event count per issue (the issue of
 * rank k gets events / (k·H) of them), spread over `--days` daily
 * partitions, in three projects of one organization; payloads are real
 * @sentry/node captures compressed as SLUICE_PAYLOAD_STORAGE=compressed
 * stores them, and `issue_hashes`, `issue_users` and `issue_tag_values`
 * are written as the worker writes them. Then it starts the bundle as
 * deployments run it (`sluice serve --role=api`, and `--role=ingest,worker`
 * beside it under an open-loop ingest load of `--ingest-rate` events/s),
 * times sequential GETs of the Sentry REST API with an instance token
 * (p50/p95/max of `--requests` after warm-ups; issues drawn log-uniformly
 * by rank, so big and small ones alike), and proves that no route reads a
 * project's events: a second API process runs each route once through
 * bench/pg-capture-proxy.ts, and every statement it ran is EXPLAINed
 * (ANALYZE, BUFFERS) and checked: no sequential scan of an events
 * partition, and at most MAX_BUFFERS buffers. Appends the figures, the
 * load average and what bounds each figure to bench/RESULTS.md. Exit code
 * 1 when a plan check fails; never fails on speed.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { applyMigrations, compressPayload, ensureEventPartitions } from "@sluice/db";
import { silentLog } from "@sluice/db/testing";
import pg from "pg";
import { buildEvent, newEventId } from "./payloads.ts";
import { type CapturedStatement, startCaptureProxy } from "./pg-capture-proxy.ts";
import { cpuSecondsOf, startPostgresCpu } from "./process-cpu.ts";
import { startProcess as startChild } from "./start-process.ts";

const run = promisify(execFile);
const root = new URL("../", import.meta.url).pathname;

/** `--name=N` or `--name N`. */
function numberArg(name: string, fallback: number): number {
  const at = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  const raw = at < 0 ? undefined : (process.argv[at]?.split("=")[1] ?? process.argv[at + 1]);
  const n = raw === undefined ? fallback : Number(raw.replaceAll("_", ""));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}
const EVENTS = numberArg("events", 10_000_000);
const ISSUES = numberArg("issues", Math.max(100, Math.round(EVENTS / 100)));
const DAYS = numberArg("days", 90);
const REQUESTS = numberArg("requests", 60);
const INGEST_RATE = numberArg("ingest-rate", 100);
const WARMUPS = 5;
const REUSE = process.argv.includes("--reuse");
const WRITE_RESULTS = !process.argv.includes("--no-results");
const DATABASE = "sluice_bench_scale";
const ORG = "platform";
/** The projects and their share of the issues (by rank, interleaved). */
const PROJECTS = [
  { slug: "backend", share: 6 },
  { slug: "frontend", share: 3 },
  { slug: "jobs", share: 1 },
];
/** Bytes a stored event takes with its indexes and `event_ids` row, measured at 200k: a margin. */
const BYTES_PER_EVENT_ESTIMATE = 1_800;
/** Free disk to leave after the fill. */
const MIN_FREE_AFTER_BYTES = 15 * 2 ** 30;
/** The most shared buffers (8 KiB) one statement of a route may touch: 40 MiB. */
const MAX_BUFFERS = 5_000;

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const databaseUrl = (() => {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DATABASE}`;
  return url.toString();
})();

const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const seconds = (ms: number) =>
  ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;

const startProcess = (args: string[], env: Record<string, string>, ready: RegExp) =>
  startChild(children, args, env, ready);

/** Free bytes on the file system that holds `/` (Postgres's data directory is on it here). */
async function freeBytes(): Promise<number> {
  const { stdout } = await run("df", ["-B1", "--output=avail", "/"]);
  return Number(stdout.trim().split("\n").at(-1));
}

/** Events of the issue of each rank: Zipf (s = 1) over `issues` ranks, at least one each, summing to `events`. */
function zipfCounts(events: number, issues: number): number[] {
  let harmonic = 0;
  for (let k = 1; k <= issues; k++) harmonic += 1 / k;
  const counts = Array.from({ length: issues }, (_, i) =>
    Math.max(1, Math.floor(events / ((i + 1) * harmonic))),
  );
  let left = events - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % issues, left--) counts[i] = (counts[i] as number) + 1;
  return counts;
}

type Seeded = { projectIds: Map<string, number>; events: number; issues: number };

/**
 * Fills the database on the server side: the issue plan (`bench_plan`:
 * rank, issue, project, events), the issues, one compressed payload per
 * issue (`bench_payloads`), then one `INSERT … SELECT generate_series` per
 * day partition, in received order, writing `event_ids` in the same
 * statement; then hashes, users and tag values from the plan.
 */
async function fill(pool: pg.Pool, keys: Map<string, { id: number; keyId: number }>) {
  const started = performance.now();
  const now = new Date();
  await ensureEventPartitions(pool, now, DAYS - 1, 3);
  const counts = zipfCounts(EVENTS, ISSUES);
  const shares = PROJECTS.flatMap((p) => Array<string>(p.share).fill(p.slug));
  // Ranks in a random order of short ids, so that the biggest issues are not the oldest rows.
  const order = Array.from({ length: ISSUES }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  await pool.query(`CREATE TABLE bench_plan (
      rank int PRIMARY KEY, project_id bigint NOT NULL, key_id bigint NOT NULL,
      seq int NOT NULL, issue_id bigint, n bigint NOT NULL, users int NOT NULL,
      kind text NOT NULL, day_offset int NOT NULL)`);
  const ranks = counts.map((_, i) => i + 1);
  const slugOf = (rank: number) => shares[rank % shares.length] as string;
  await pool.query(
    `INSERT INTO bench_plan (rank, project_id, key_id, seq, n, users, kind, day_offset)
     SELECT r, p, k, s, n, least(n, ceil(2 * sqrt(n)))::int,
            CASE WHEN r % 5 = 0 THEN 'small' ELSE 'typical' END, (r * 37) % $6::int
       FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::int[], $5::bigint[]) AS u(r, p, k, s, n)`,
    [
      ranks,
      ranks.map((r) => keys.get(slugOf(r))?.id),
      ranks.map((r) => keys.get(slugOf(r))?.keyId),
      ranks.map((r) => (order[r - 1] as number) + 1),
      counts,
      DAYS,
    ],
  );
  // Short ids count per project, as projects.next_short_id hands them out.
  await pool.query(`UPDATE bench_plan p SET seq = o.seq FROM (
      SELECT rank, row_number() OVER (PARTITION BY project_id ORDER BY seq) AS seq FROM bench_plan) o
     WHERE o.rank = p.rank`);
  const statusOf = `CASE WHEN (p.rank * 7919) % 100 < 10 THEN 'resolved'
                         WHEN (p.rank * 7919) % 100 < 15 THEN 'ignored' ELSE 'unresolved' END`;
  await pool.query(
    `INSERT INTO issues (project_id, short_id, title, culprit, level, platform, metadata, status,
                         first_seen, last_seen, times_seen, user_count, first_release, last_release,
                         resolved_at)
     SELECT p.project_id, p.seq,
            CASE WHEN p.kind = 'small' THEN 'cache miss for key ' || (p.rank % 300)
                 ELSE 'BenchError' || (p.rank % 300) || ': request ' || p.rank || ' failed' END,
            CASE WHEN p.kind = 'small' THEN '' ELSE 'Timeout._onTimeout(app/routes.js)' END,
            CASE WHEN p.kind = 'small' THEN 'info' ELSE 'error' END, 'node',
            CASE WHEN p.kind = 'small' THEN jsonb_build_object('title', 'cache miss for key ' || (p.rank % 300))
                 ELSE jsonb_build_object('type', 'BenchError' || (p.rank % 300), 'value',
                        'request ' || p.rank || ' failed', 'filename', 'app/routes.js',
                        'function', 'Timeout._onTimeout') END,
            ${statusOf}, now(), now(), p.n, p.users, 'bench@1.0.0', 'bench@1.0.0',
            CASE WHEN ${statusOf} = 'resolved' THEN now() END
       FROM bench_plan p ORDER BY p.project_id, p.seq`,
  );
  await pool.query(`UPDATE bench_plan p SET issue_id = i.id FROM issues i
                     WHERE i.project_id = p.project_id AND i.short_id = p.seq`);
  await pool.query(`UPDATE projects SET next_short_id = coalesce(
      (SELECT max(seq) + 1 FROM bench_plan WHERE project_id = projects.id), 1)`);
  await pool.query(`CREATE TABLE bench_payloads (rank int PRIMARY KEY, blob bytea NOT NULL)`);
  for (let from = 1; from <= ISSUES; from += 2_000) {
    const batch = ranks.slice(from - 1, from - 1 + 2_000);
    const blobs = batch.map((r) =>
      compressPayload(
        JSON.stringify(buildEvent(r % 5 === 0 ? "small" : "typical", newEventId(), r)),
      ),
    );
    await pool.query("INSERT INTO bench_payloads SELECT * FROM unnest($1::int[], $2::bytea[])", [
      batch,
      blobs,
    ]);
  }
  console.log(
    `plan: ${fmt(ISSUES)} issues (largest ${fmt(counts[0] as number)} events, smallest ${fmt(counts.at(-1) as number)}), payloads built in ${seconds(performance.now() - started)}`,
  );

  const client = await pool.connect();
  try {
    // The day's rows are sorted before they are written (received order, as ingest writes them).
    await client.query("SET work_mem = '512MB'");
    // The planner's estimates of the generated rows are far off; JIT would compile for 0.4 s a day.
    await client.query("SET jit = off");
    await client.query(
      "CREATE TABLE bench_day_seen (issue_id bigint NOT NULL, first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL)",
    );
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const fillStarted = performance.now();
    let written = 0;
    for (let d = 0; d < DAYS; d++) {
      const dayStart = new Date(today - (DAYS - 1 - d) * 86_400_000);
      const span = Math.min(86_400_000, now.getTime() - 60_000 - dayStart.getTime()) / 1000;
      const partition = `events_p${dayStart.toISOString().slice(0, 10).replaceAll("-", "")}`;
      const t0 = performance.now();
      await client.query(
        `WITH src AS (
           SELECT p.rank, p.project_id, p.key_id, p.issue_id, gen_random_uuid() AS event_id,
                  -- Milliseconds, as ingest writes it (a JavaScript Date): findEvent reads it back exactly.
                  date_trunc('milliseconds', $1::timestamptz + random() * $2::float8 * interval '1 second') AS received_at
             FROM bench_plan p
            CROSS JOIN LATERAL generate_series(1, (p.n / $4::int
                 + CASE WHEN ((($3::int - p.day_offset) % $4::int) + $4::int) % $4::int < p.n % $4::int
                        THEN 1 ELSE 0 END)::int) AS g
         ), ins AS (
           INSERT INTO ${partition} (project_id, event_id, received_at, "timestamp", key_id, payload,
                                     payload_compressed, issue_id, processed_at, primary_hash)
           SELECT s.project_id, s.event_id, s.received_at, s.received_at - interval '150 milliseconds',
                  s.key_id, 'null'::jsonb, b.blob, s.issue_id, s.received_at + interval '1 second',
                  md5('bench-' || s.rank)
             FROM src s JOIN bench_payloads b ON b.rank = s.rank
            ORDER BY s.received_at
           RETURNING project_id, event_id, received_at, issue_id
         ), ids AS (
           INSERT INTO event_ids (project_id, event_id, received_at)
           SELECT project_id, event_id, received_at FROM ins ORDER BY project_id, event_id
         )
         INSERT INTO bench_day_seen
         SELECT issue_id, min(received_at), max(received_at) FROM ins GROUP BY issue_id`,
        [dayStart, span, d, DAYS],
      );
      const day = Number(
        (await client.query(`SELECT count(*)::int AS n FROM ${partition}`)).rows[0].n,
      );
      written += day;
      const elapsed = performance.now() - fillStarted;
      const rate = written / (elapsed / 1000);
      console.log(
        `  day ${d + 1}/${DAYS} ${partition}: ${fmt(day)} rows in ${seconds(performance.now() - t0)} (${fmt(day / ((performance.now() - t0) / 1000))}/s); ${fmt(written)} of ${fmt(EVENTS)} at ${fmt(rate)}/s, ETA ${seconds(((EVENTS - written) / rate) * 1000)}`,
      );
    }
    console.log("  issues' first and last seen, hashes, users, tag values ...");
    await client.query(`UPDATE issues i SET first_seen = s.f, last_seen = s.l
        FROM (SELECT issue_id, min(first_seen) AS f, max(last_seen) AS l FROM bench_day_seen GROUP BY 1) s
       WHERE i.id = s.issue_id`);
    await client.query(`INSERT INTO issue_hashes (project_id, hash, issue_id, variant)
        SELECT project_id, md5('bench-' || rank), issue_id, 'app' FROM bench_plan`);
    await client.query(`INSERT INTO issue_users (issue_id, user_key)
        SELECT p.issue_id, 'id:user-' || p.rank || '-' || u
          FROM bench_plan p CROSS JOIN LATERAL generate_series(1, p.users) AS u`);
    // Tag values as the worker counts them (issue_tag_values, migration 0010): the
    // tags of the payloads (region, shard, route), Sentry's derived ones, one row per user.
    await client.query(
      `INSERT INTO issue_tag_values (issue_id, project_id, key, value, times_seen, first_seen, last_seen)
       SELECT i.id, i.project_id, k.key, k.value, greatest(1, round(i.times_seen * k.share))::bigint,
              i.first_seen, i.last_seen
         FROM issues i JOIN bench_plan p ON p.issue_id = i.id CROSS JOIN LATERAL (VALUES
           ('environment', CASE WHEN p.rank % 5 = 1 THEN 'staging' ELSE 'production' END, 1.0),
           ('server_name', 'web-' || (p.rank % 20), 0.6),
           ('server_name', 'web-' || ((p.rank + 1) % 20), 0.4),
           ('level', i.level, 1.0),
           ('release', 'bench@1.0.0', 1.0),
           ('runtime', 'node v20.19.0', 1.0),
           ('runtime.name', 'node', 1.0),
           ('os', 'Linux 6.1', 1.0),
           ('os.name', 'Linux', 1.0),
           ('region', 'eu-west-1', 1.0),
           ('shard', (p.rank % 16)::text, 1.0),
           ('route', '/checkout', 1.0),
           ('handled', CASE WHEN p.rank % 3 = 0 THEN 'no' ELSE 'yes' END, 1.0)
         ) AS k(key, value, share)`,
    );
    await client.query(`INSERT INTO issue_tag_values (issue_id, project_id, key, value, times_seen, first_seen, last_seen)
        SELECT p.issue_id, p.project_id, 'user', 'id:user-' || p.rank || '-' || u,
               greatest(1, p.n / p.users), i.first_seen, i.last_seen
          FROM bench_plan p JOIN issues i ON i.id = p.issue_id
         CROSS JOIN LATERAL generate_series(1, p.users) AS u`);
    await client.query("DROP TABLE bench_payloads, bench_day_seen");
    await client.query(
      "CREATE TABLE bench_meta (events bigint NOT NULL, issues int NOT NULL, days int NOT NULL, filled_at timestamptz NOT NULL, fill_seconds float8 NOT NULL)",
    );
    console.log(
      "  VACUUM ANALYZE (hint bits and the visibility map, as autovacuum would leave them) ...",
    );
    const vacuumStarted = performance.now();
    await client.query("VACUUM ANALYZE");
    console.log(`  VACUUM ANALYZE: ${seconds(performance.now() - vacuumStarted)}`);
    await client.query("INSERT INTO bench_meta VALUES ($1, $2, $3, $4, $5)", [
      written,
      ISSUES,
      DAYS,
      now,
      (performance.now() - started) / 1000,
    ]);
    console.log(
      `filled ${fmt(written)} events in ${fmt(ISSUES)} issues over ${DAYS} partitions in ${seconds(performance.now() - started)}`,
    );
  } finally {
    client.release();
  }
}

/** A route to time: its name, what it stands for, and a path (fresh for each request). */
type Route = { name: string; path: () => string; plan: string };

type Figure = {
  name: string;
  plan: string;
  p50: number;
  p95: number;
  max: number;
  /** CPU of the API process per request, ms. */
  apiCpuMs: number;
  bytes: number;
};

/** One route's statements as EXPLAINed. */
type PlanSummary = {
  route: string;
  statements: {
    sql: string;
    executionMs: number;
    planningMs: number;
    /** JIT compilation, part of the execution time (0: none). */
    jitMs: number;
    buffers: number;
    /** "Index Scan events_p20261201_issue_id_received_at_idx" … for nodes that ran. */
    scans: string[];
    /** Partitions of events the statement read (nodes that ran at least once). */
    eventPartitions: number;
    problems: string[];
  }[];
};

type PlanNode = {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Loops"?: number;
  "Actual Rows"?: number;
  "Shared Hit Blocks"?: number;
  "Shared Read Blocks"?: number;
  Plans?: PlanNode[];
};

const isEventsRelation = (name: string | undefined) =>
  name !== undefined && /^events(_p\d{8}|_default)?$/.test(name);

/** EXPLAIN (ANALYZE, BUFFERS) of one captured statement, in a transaction rolled back after. */
async function explainStatement(pool: pg.Pool, s: CapturedStatement) {
  const client = await pool.connect();
  try {
    // Twice, keeping the second: the first on this connection also loads the
    // catalog entries of every partition, which the server's pooled connections hold.
    await client.query("BEGIN");
    await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${s.text}`, s.values as unknown[]);
    await client.query("ROLLBACK");
    await client.query("BEGIN");
    const result = await client.query(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${s.text}`,
      s.values as unknown[],
    );
    const [top] = result.rows[0]["QUERY PLAN"] as {
      Plan: PlanNode;
      "Execution Time": number;
      "Planning Time": number;
      JIT?: { Timing?: { Total?: number } };
    }[];
    if (!top) throw new Error(`no plan for ${s.text}`);
    const scans: string[] = [];
    const problems: string[] = [];
    let eventPartitions = 0;
    const walk = (node: PlanNode) => {
      const ran = (node["Actual Loops"] ?? 0) > 0;
      if (node["Relation Name"] && ran) {
        const label = `${node["Node Type"]} ${node["Index Name"] ?? node["Relation Name"]}`;
        if (!scans.includes(label)) scans.push(label);
      }
      if (isEventsRelation(node["Relation Name"]) && ran) {
        eventPartitions++;
        // An empty partition (days ahead, events_default) has no page to read: its
        // sequential scan reads no buffer, and is what the planner picks for it.
        const read = (node["Shared Hit Blocks"] ?? 0) + (node["Shared Read Blocks"] ?? 0);
        if (/Seq Scan|Sample Scan/.test(node["Node Type"]) && read > 0) {
          problems.push(`${node["Node Type"]} on ${node["Relation Name"]} (${fmt(read)} buffers)`);
        }
      }
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(top.Plan);
    const buffers = (top.Plan["Shared Hit Blocks"] ?? 0) + (top.Plan["Shared Read Blocks"] ?? 0);
    if (eventPartitions > 0 && buffers > MAX_BUFFERS)
      problems.push(`${fmt(buffers)} buffers (> ${fmt(MAX_BUFFERS)})`);
    // Collapse the per-partition index names into one pattern.
    const collapsed = [
      ...new Set(scans.map((l) => l.replace(/events_p\d{8}/, "events_pYYYYMMDD"))),
    ];
    return {
      sql: s.text.replace(/\s+/g, " ").trim(),
      executionMs: top["Execution Time"],
      planningMs: top["Planning Time"],
      jitMs: top.JIT?.Timing?.Total ?? 0,
      buffers,
      scans: collapsed,
      eventPartitions,
      problems,
    };
  } finally {
    await client.query("ROLLBACK").catch(() => {});
    client.release();
  }
}

/** Transaction control, and the node registry's heartbeat (a timer of every node, not of a route). */
const SKIPPED_STATEMENTS =
  /^\s*(BEGIN|COMMIT|ROLLBACK|SET|SHOW|SELECT 1\s*$)|sluice_nodes|FROM pg_stat_activity/i;

async function main() {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const exists = (await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE]))
    .rowCount;
  if (REUSE && !exists) throw new Error(`--reuse: no database ${DATABASE}; run without --reuse`);
  if (!REUSE) {
    const free = await freeBytes();
    const needed = EVENTS * BYTES_PER_EVENT_ESTIMATE;
    console.log(
      `disk: ${(free / 2 ** 30).toFixed(1)} GiB free, the fill needs about ${(needed / 2 ** 30).toFixed(1)} GiB`,
    );
    if (exists) await admin.query(`DROP DATABASE ${DATABASE} WITH (FORCE)`);
    if (free - needed < MIN_FREE_AFTER_BYTES) {
      throw new Error(
        `not enough disk: keep ${MIN_FREE_AFTER_BYTES / 2 ** 30} GiB free after the fill`,
      );
    }
    await admin.query(`CREATE DATABASE ${DATABASE}`);
  }
  await admin.end();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  try {
    await applyMigrations(pool, {
      holder: "bench",
      leaseMs: 10_000,
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 600_000,
      lockRetries: 3,
      log: silentLog,
    });
    await run("npm", ["run", "build"], { cwd: root });
    const bin = join(root, "apps/server/dist/sluice.mjs");
    const prefix = `sluice-bench-scale-${Date.now()}`;
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      SLUICE_QUEUE_PREFIX: prefix,
      LOG_LEVEL: "info",
      HOST: "127.0.0.1",
      PORT: "0",
      SLUICE_METRICS_PORT: "0",
      SLUICE_PAYLOAD_STORAGE: "compressed",
      SLUICE_DRAIN_DELAY_MS: "0",
      // The seeded days stay put across --reuse runs: retention never drops them.
      SLUICE_RETENTION_DAYS: "3650",
      MALLOC_ARENA_MAX: "2",
    };
    const cli = async (...args: string[]) =>
      (await run(process.execPath, [bin, ...args], { env: { ...process.env, ...env } })).stdout;
    const keys = new Map<string, { id: number; keyId: number }>();
    const dsns = new Map<string, URL>();
    for (const p of PROJECTS) {
      const created = JSON.parse(await cli("projects", "create", p.slug, "--org", ORG, "--json"));
      const key = await pool.query("SELECT id FROM project_keys WHERE project_id = $1 LIMIT 1", [
        created.id,
      ]);
      keys.set(p.slug, { id: Number(created.id), keyId: Number(key.rows[0].id) });
      dsns.set(p.slug, new URL(created.dsn));
    }
    if (!REUSE) await fill(pool, keys);
    // Statistics a later migration added (0014's on issue_tag_values) are filled in by
    // ANALYZE, which autovacuum would run in time; a reused database gets them now.
    await pool.query("ANALYZE issues, issue_tag_values");
    const meta = (await pool.query("SELECT * FROM bench_meta")).rows[0];
    if (!meta) throw new Error("the database was not filled to the end; run without --reuse");
    const seeded: Seeded = {
      projectIds: new Map([...keys].map(([slug, k]) => [slug, k.id])),
      events: Number(meta.events),
      issues: Number(meta.issues),
    };
    const sizes = (
      await pool.query(`SELECT pg_database_size(current_database()) AS db,
        (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
          WHERE h.inhparent = 'events'::regclass) AS events,
        (SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass) AS partitions`)
    ).rows[0];
    console.log(
      `database ${DATABASE}: ${fmt(seeded.events)} events in ${fmt(seeded.issues)} issues, ${sizes.partitions} partitions; ${(Number(sizes.db) / 2 ** 30).toFixed(1)} GiB (events ${(Number(sizes.events) / 2 ** 30).toFixed(1)} GiB, ${fmt(Number(sizes.events) / seeded.events)} B/event)`,
    );

    const token = JSON.parse(
      await cli("tokens", "create", "--scopes", "org:read,project:read,event:read", "--json"),
    ).token as string;

    // Issues to read, by rank: log-uniform, so each decade of rank (1-10, 10-100, ...) is drawn
    // as often: the biggest issues and the long tail alike.
    const plan = (
      await pool.query("SELECT rank, issue_id, n FROM bench_plan ORDER BY rank")
    ).rows.map((r) => ({ rank: Number(r.rank), id: Number(r.issue_id), n: Number(r.n) }));
    const logRank = () =>
      plan[Math.min(plan.length - 1, Math.floor(Math.exp(Math.random() * Math.log(plan.length))))];
    const big = () => plan[Math.floor(Math.random() * Math.min(100, plan.length))];
    const small = () => plan[Math.floor(plan.length / 10 + Math.random() * (plan.length * 0.9))];
    // Events to read: drawn uniformly over the stored events (most belong to big issues).
    const partitions = (
      await pool.query(
        "SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'events'::regclass AND c.reltuples > 0",
      )
    ).rows.map((r) => r.relname as string);
    const sampledEvents: { project: string; eventId: string }[] = [];
    const slugById = new Map([...keys].map(([slug, k]) => [k.id, slug]));
    while (sampledEvents.length < REQUESTS + WARMUPS + 5) {
      const partition = partitions[Math.floor(Math.random() * partitions.length)];
      const row = (
        await pool.query(
          `SELECT project_id, event_id::text FROM ${partition} TABLESAMPLE SYSTEM (0.05) LIMIT 1`,
        )
      ).rows[0];
      if (row)
        sampledEvents.push({
          project: slugById.get(Number(row.project_id)) as string,
          eventId: row.event_id.replaceAll("-", ""),
        });
    }
    let nextEvent = 0;
    const oneEvent = () =>
      sampledEvents[nextEvent++ % sampledEvents.length] as {
        project: string;
        eventId: string;
      };

    const issues = `/api/0/projects/${ORG}/backend/issues/`;
    const orgIssues = `/api/0/organizations/${ORG}/issues/`;
    const tagSearch = `?query=${encodeURIComponent("is:unresolved server_name:web-3")}`;
    const eventPath = () => {
      const e = oneEvent();
      return `/api/0/projects/${ORG}/${e.project}/events/${e.eventId}/`;
    };
    // `plan` names the plan check below that stands for the route (on the biggest issue).
    const routes: Route[] = [
      {
        name: "project issues (default: unresolved, by last seen)",
        plan: "project issues",
        path: () => issues,
      },
      {
        name: "project issues, sort=freq",
        plan: "project issues, sort=freq",
        path: () => `${issues}?sort=freq`,
      },
      {
        name: "project issues, second page",
        plan: "project issues, second page",
        path: () => `${issues}?cursor=0:100:0`,
      },
      {
        name: "project issues, `is:unresolved server_name:web-3`",
        plan: "project issues, tag search",
        path: () => `${issues}${tagSearch}`,
      },
      {
        name: "project issues, `?environment=production` (80% of issues)",
        plan: "project issues, environment",
        path: () => `${issues}?environment=production`,
      },
      {
        name: "organization issues (3 projects)",
        plan: "organization issues",
        path: () => orgIssues,
      },
      {
        name: "organization issues, sort=freq",
        plan: "organization issues, sort=freq",
        path: () => `${orgIssues}?sort=freq`,
      },
      {
        name: "issue (log-uniform rank)",
        plan: "issue",
        path: () => `/api/0/issues/${logRank()?.id}/`,
      },
      {
        name: "issue events, big issues (rank <= 100)",
        plan: "issue events",
        path: () => `/api/0/issues/${big()?.id}/events/`,
      },
      {
        name: "issue events, small issues (rank > 10%)",
        plan: "issue events",
        path: () => `/api/0/issues/${small()?.id}/events/`,
      },
      {
        name: "issue events, log-uniform rank",
        plan: "issue events",
        path: () => `/api/0/issues/${logRank()?.id}/events/`,
      },
      {
        name: "latest event, log-uniform rank",
        plan: "latest event",
        path: () => `/api/0/issues/${logRank()?.id}/events/latest/`,
      },
      {
        name: "oldest event, big issues (rank <= 100)",
        plan: "oldest event",
        path: () => `/api/0/issues/${big()?.id}/events/oldest/`,
      },
      {
        name: "oldest event, log-uniform rank",
        plan: "oldest event",
        path: () => `/api/0/issues/${logRank()?.id}/events/oldest/`,
      },
      { name: "one event (uniform over events)", plan: "one event", path: eventPath },
    ];

    // The ingest side under load: ingest and worker in one process, as a small fleet's node.
    const ingest = await startProcess(
      ["--max-semi-space-size=4", bin, "serve", "--role=ingest,worker", "--no-migrate"],
      env,
      /"port":(\d+).*"msg":"sluice is serving"/,
    );
    const api = await startProcess(
      ["--max-semi-space-size=4", bin, "serve", "--role=api", "--no-migrate"],
      env,
      /"port":(\d+).*"msg":"sluice is serving"/,
    );
    const apiPid = api.child.pid as number;
    const base = `http://127.0.0.1:${api.port}`;
    const get = async (path: string) => {
      const begin = performance.now();
      const response = await fetch(`${base}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = await response.arrayBuffer();
      if (response.status !== 200)
        throw new Error(
          `${path}: ${response.status} ${Buffer.from(body).toString().slice(0, 300)}`,
        );
      return { ms: performance.now() - begin, bytes: body.byteLength };
    };

    const dsn = dsns.get("backend") as URL;
    const ingestUrl = `http://127.0.0.1:${ingest.port}/api${dsn.pathname}/envelope/?sentry_key=${dsn.username}&sentry_version=7`;
    // Longer than the timing takes; every body has its own event id (a repeated one is
    // a duplicate, which ingest answers 200 and stores nothing for).
    const loadSeconds = 60 + routes.length * (REQUESTS + WARMUPS) * 0.25;
    const bodies = Math.min(60_000, Math.ceil(INGEST_RATE * loadSeconds * 1.05));
    const loadStarted = new Date();
    const generator = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(root, "bench/open-loop-process.ts"),
        JSON.stringify({
          url: ingestUrl,
          kind: "typical",
          form: "envelope",
          gzip: false,
          seconds: loadSeconds,
          bodies,
          rate: INGEST_RATE,
        }),
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    children.push(generator);
    await sleep(5_000);

    const postgresCpu = await startPostgresCpu(databaseUrl);
    const loadBefore = loadavg();
    const timingStarted = Date.now();
    const pgCpuStart = postgresCpu.read();
    const ingestCpuStart = cpuSecondsOf(ingest.child.pid as number);
    const figures: Figure[] = [];
    console.log(
      `timing ${routes.length} routes, ${REQUESTS} sequential requests each after ${WARMUPS} warm-ups, ingest at ${INGEST_RATE} events/s (load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")})`,
    );
    for (const route of routes) {
      for (let i = 0; i < WARMUPS; i++) await get(route.path());
      const cpuBefore = cpuSecondsOf(apiPid);
      const samples: number[] = [];
      let bytes = 0;
      for (let i = 0; i < REQUESTS; i++) {
        const r = await get(route.path());
        samples.push(r.ms);
        bytes += r.bytes;
      }
      const apiCpuMs = ((cpuSecondsOf(apiPid) - cpuBefore) * 1000) / REQUESTS;
      samples.sort((a, b) => a - b);
      const at = (q: number) =>
        samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
      const figure = {
        name: route.name,
        plan: route.plan,
        p50: at(0.5),
        p95: at(0.95),
        max: at(1),
        apiCpuMs,
        bytes: bytes / REQUESTS,
      };
      figures.push(figure);
      console.log(
        `${route.name.padEnd(52)} p50 ${figure.p50.toFixed(1).padStart(7)} ms  p95 ${figure.p95.toFixed(1).padStart(7)} ms  max ${figure.max.toFixed(1).padStart(7)} ms  api CPU ${apiCpuMs.toFixed(1)} ms/req  ${fmt(figure.bytes)} B`,
      );
    }
    const timingEnded = Date.now();
    const timingSeconds = (timingEnded - timingStarted) / 1000;
    const loadAfter = loadavg();
    const pgCores = (postgresCpu.read() - pgCpuStart) / timingSeconds;
    const ingestCores = (cpuSecondsOf(ingest.child.pid as number) - ingestCpuStart) / timingSeconds;
    await postgresCpu.stop();
    const ingested = (
      await pool.query(
        `SELECT count(*)::int AS stored, count(processed_at)::int AS processed FROM events
          WHERE received_at >= $1 AND received_at < $2`,
        [new Date(timingStarted), new Date(timingEnded)],
      )
    ).rows[0];
    generator.kill("SIGTERM");
    const uptime = (await run("uptime")).stdout.trim();
    console.log(
      `ingest during the timing: ${fmt(ingested.stored / timingSeconds)} events/s stored, ${fmt(ingested.processed / timingSeconds)}/s processed (offered ${INGEST_RATE}/s; load started ${loadStarted.toISOString()}); CPU: ingest+worker ${Math.round(ingestCores * 100)}%, Postgres ${Math.round(pgCores * 100)}%; ${uptime}`,
    );

    // The plan check: a second API process behind the capturing proxy runs each route once
    // (on the biggest issue, the worst case), and every statement it sent is EXPLAINed.
    const target = new URL(ADMIN_URL);
    const proxy = await startCaptureProxy({
      host: target.hostname,
      port: Number(target.port || 5432),
    });
    const proxiedUrl = new URL(databaseUrl);
    proxiedUrl.host = `127.0.0.1:${proxy.port}`;
    const explained = await startProcess(
      ["--max-semi-space-size=4", bin, "serve", "--role=api", "--no-migrate"],
      { ...env, DATABASE_URL: proxiedUrl.toString() },
      /"port":(\d+).*"msg":"sluice is serving"/,
    );
    const biggest = plan[0] as { id: number };
    const planRoutes: [string, string][] = [
      ["project issues", issues],
      ["project issues, sort=freq", `${issues}?sort=freq`],
      ["project issues, second page", `${issues}?cursor=0:100:0`],
      ["project issues, tag search", `${issues}${tagSearch}`],
      ["project issues, environment", `${issues}?environment=production`],
      ["organization issues", orgIssues],
      ["organization issues, sort=freq", `${orgIssues}?sort=freq`],
      ["issue", `/api/0/issues/${biggest.id}/`],
      ["issue events", `/api/0/issues/${biggest.id}/events/`],
      ["latest event", `/api/0/issues/${biggest.id}/events/latest/`],
      ["oldest event", `/api/0/issues/${biggest.id}/events/oldest/`],
      ["one event", eventPath()],
    ];
    const explainPool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    const summaries: PlanSummary[] = [];
    for (const [name, path] of planRoutes) {
      // Twice: the first request may run one-time statements (a token's last_used_at).
      await fetch(`http://127.0.0.1:${explained.port}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.arrayBuffer());
      proxy.statements.length = 0;
      const response = await fetch(`http://127.0.0.1:${explained.port}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
      const statements = proxy.statements.splice(0).filter((s) => !SKIPPED_STATEMENTS.test(s.text));
      const summary: PlanSummary = { route: name, statements: [] };
      for (const s of statements) summary.statements.push(await explainStatement(explainPool, s));
      summaries.push(summary);
    }
    await explainPool.end();
    explained.child.kill("SIGTERM");
    await proxy.stop();
    let failed = false;
    console.log("\nplans of every statement each route ran (EXPLAIN ANALYZE, BUFFERS):");
    for (const s of summaries) {
      console.log(`  ${s.route}: ${s.statements.length} statements`);
      for (const st of s.statements) {
        if (st.problems.length > 0) failed = true;
        console.log(
          `    ${st.problems.length > 0 ? "FAIL" : "ok  "} ${st.executionMs.toFixed(2).padStart(8)} ms exec ${st.planningMs.toFixed(2).padStart(6)} ms plan ${st.jitMs ? `(JIT ${st.jitMs.toFixed(1)} ms) ` : ""}${String(st.buffers).padStart(6)} buf ${st.eventPartitions ? `${st.eventPartitions} event partitions ` : ""}| ${st.scans.join(", ") || "(no table)"} | ${st.sql.slice(0, 110)}${st.problems.length ? ` | ${st.problems.join("; ")}` : ""}`,
        );
      }
    }
    console.log(
      failed
        ? "\nPLAN CHECK FAILED: a statement scans events or reads too many buffers"
        : `\nplan check passed: no statement scans an events partition; each that reads events touches at most ${fmt(MAX_BUFFERS)} buffers`,
    );
    if (failed) process.exitCode = 1;

    if (WRITE_RESULTS) {
      appendFileSync(
        join(root, "bench/RESULTS.md"),
        resultsSection({
          seeded,
          sizes,
          figures,
          summaries,
          uptime,
          loadBefore,
          loadAfter,
          ingest: {
            stored: ingested.stored / timingSeconds,
            processed: ingested.processed / timingSeconds,
            ingestCores,
            pgCores,
          },
          fillSeconds: Number(meta.fill_seconds),
          failed,
        }),
      );
      console.log("appended to bench/RESULTS.md");
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
    await pool.end();
  }
}

/** A statement that looks up one row of a small table (the caller's token, an organization, a project, an issue). */
const isLookup = (st: PlanSummary["statements"][number]) =>
  st.eventPartitions === 0 && st.buffers <= 10 && st.executionMs < 1;

/** The bound of a route's figure, from its plans: the statements' Postgres time and what they read. */
function boundOf(summary: PlanSummary | undefined): string {
  if (!summary) return "";
  const db = summary.statements.reduce((a, s) => a + s.executionMs + s.planningMs, 0);
  const main = [...summary.statements].sort((a, b) => b.executionMs - a.executionMs)[0];
  if (!main) return "";
  return `${summary.statements.length} statements, ${db.toFixed(1)} ms in Postgres; slowest: ${main.scans.slice(0, 3).join(", ")} (${fmt(main.buffers)} buffers${main.eventPartitions ? `, ${main.eventPartitions} partitions` : ""})`;
}

function resultsSection(r: {
  seeded: Seeded;
  sizes: { db: string; events: string; partitions: string };
  figures: Figure[];
  summaries: PlanSummary[];
  uptime: string;
  loadBefore: number[];
  loadAfter: number[];
  ingest: { stored: number; processed: number; ingestCores: number; pgCores: number };
  fillSeconds: number;
  failed: boolean;
}): string {
  const planOf = (name: string) => r.summaries.find((s) => s.route === name);
  const lines = [
    "",
    `## ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC: the API at ${fmt(r.seeded.events)} events (#16)`,
    "",
    `\`npm run bench:api-scale -- --events=${r.seeded.events}\`: ${fmt(r.seeded.events)} events in ${fmt(r.seeded.issues)} issues (Zipf: the issue of rank k has events/(k·H)), ${r.sizes.partitions} day partitions, 3 projects of one organization; ${(Number(r.sizes.db) / 2 ** 30).toFixed(1)} GiB (events with indexes ${fmt(Number(r.sizes.events) / r.seeded.events)} B/event), filled in ${seconds(r.fillSeconds * 1000)}. ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. The bundle runs as \`serve --role=api\` beside \`serve --role=ingest,worker\` under open-loop ingest (offered ${INGEST_RATE}/s; ${fmt(r.ingest.stored)}/s stored and ${fmt(r.ingest.processed)}/s processed while timing; ingest+worker ${Math.round(r.ingest.ingestCores * 100)}% of a core, Postgres ${Math.round(r.ingest.pgCores * 100)}%). ${REQUESTS} sequential requests per route after ${WARMUPS} warm-ups, over loopback, with an instance token. **Load average** ${r.loadBefore.map((l) => l.toFixed(2)).join(" ")} before, ${r.loadAfter.map((l) => l.toFixed(2)).join(" ")} after (\`${r.uptime}\`).`,
    "",
    "| Route | p50 ms | p95 ms | max ms | API CPU ms/req | bytes | Postgres side (plan on the biggest issue) |",
    "|---|---|---|---|---|---|---|",
    ...r.figures.map(
      (f) =>
        `| ${f.name} | ${f.p50.toFixed(1)} | ${f.p95.toFixed(1)} | ${f.max.toFixed(1)} | ${f.apiCpuMs.toFixed(1)} | ${fmt(f.bytes)} | ${boundOf(planOf(f.plan))} |`,
    ),
    "",
    r.failed
      ? "**Plan check failed**: a statement below scans an events partition or reads more than the buffer bound."
      : `Plan check passed: no statement of these routes scans an events partition, and each that reads events touches at most ${fmt(MAX_BUFFERS)} buffers (EXPLAIN (ANALYZE, BUFFERS) of every statement the route sent, captured by bench/pg-capture-proxy.ts):`,
    "",
    "| Route | Statement | exec ms | plan ms | buffers | Scans |",
    "|---|---|---|---|---|---|",
    ...r.summaries.flatMap((s) => {
      const lookups = s.statements.filter(isLookup);
      const lookupMs = lookups.reduce((a, st) => a + st.executionMs + st.planningMs, 0);
      return [
        ...s.statements
          .filter((st) => !isLookup(st))
          .map(
            (st) =>
              `| ${s.route} | \`${st.sql.slice(0, 80).replaceAll("|", "\\|")}…\` | ${st.executionMs.toFixed(2)} | ${st.planningMs.toFixed(2)} | ${fmt(st.buffers)} | ${st.scans.join(", ")}${st.eventPartitions ? ` (${st.eventPartitions} event partitions)` : ""}${st.problems.length ? ` **${st.problems.join("; ")}**` : ""} |`,
          ),
        `| ${s.route} | ${lookups.length} one-row lookups (token and its last use, organization, project, issue or event id) | ${lookupMs.toFixed(2)} (with planning) | | ≤ ${Math.max(0, ...lookups.map((st) => st.buffers))} each | |`,
      ];
    }),
    "",
  ];
  return lines.join("\n");
}

await main();
