/**
 * `npx tsx bench/web-pages.ts [--events=100000] [--issues=5000] [--requests=60]`:
 * the server time of the web pages on a project of that size (issue #20:
 * 100,000 events in 5,000 issues, p95 under 200 ms). Seeds one project of a
 * test Sluice through SQL (typical @sentry/node errors, compressed as
 * SLUICE_PAYLOAD_STORAGE=compressed stores them, received over the last two
 * days), then times sequential GETs over loopback of the issue list (default
 * search, sorted by events, the second page, a text search, environment and
 * tag searches through `issue_tag_values`, seeded with a dozen tags per issue
 * and one row per user) and of issue pages of random issues. Loopback adds well under a millisecond, so the
 * times are the server's. Prints p50/p95/max per page. Not a test: it never
 * fails on speed.
 */
import { compressPayload } from "@sluice/db";
import { createTestUser, signInForm } from "../apps/server/test/accounts-harness.ts";
import { startTestSluice } from "../apps/server/test/harness.ts";
import { buildEvent, newEventId } from "./payloads.ts";

const arg = (name: string, fallback: number) => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const EVENTS = arg("events", 100_000);
const ISSUES = arg("issues", 5_000);
const REQUESTS = arg("requests", 60);
const BATCH = 2_000;

const t = await startTestSluice({ redis: false });
try {
  const started = performance.now();
  const projectId = t.projectId;
  const now = Date.now();
  const spanMs = 48 * 3_600_000;
  // Issues first, with the counts the events below give them.
  await t.sql.query(
    `INSERT INTO issues (project_id, short_id, title, culprit, level, platform, metadata, status,
                         first_seen, last_seen, times_seen, user_count, first_release, last_release)
     SELECT $1, n, 'BenchError' || n || ': request ' || n || ' failed', 'handler(app/routes.js)',
            CASE WHEN n % 10 = 0 THEN 'warning' ELSE 'error' END, 'node', '{}',
            CASE WHEN n % 7 = 0 THEN 'resolved' ELSE 'unresolved' END,
            to_timestamp(($3::bigint - $4::bigint) / 1000.0) + (n % 100) * interval '1 minute',
            to_timestamp($3::bigint / 1000.0) - (n % 1000) * interval '1 minute',
            ($2::bigint / $5::int) + CASE WHEN n <= $2::bigint % $5::int THEN 1 ELSE 0 END, n % 50, 'bench@1.0.0', 'bench@1.0.0'
       FROM generate_series(1, $5::int) AS n`,
    [projectId, EVENTS, now, spanMs, ISSUES],
  );
  const ids = (
    await t.sql.query("SELECT id FROM issues WHERE project_id = $1 ORDER BY short_id", [projectId])
  ).rows.map((r) => Number(r.id));
  const payloads = new Map<number, Buffer>();
  for (let done = 0; done < EVENTS; done += BATCH) {
    const size = Math.min(BATCH, EVENTS - done);
    const eventIds: string[] = [];
    const issueIds: number[] = [];
    const times: string[] = [];
    const blobs: Buffer[] = [];
    for (let i = 0; i < size; i++) {
      const n = done + i;
      const variant = n % ISSUES;
      const eventId = newEventId();
      let blob = payloads.get(variant);
      if (!blob) {
        blob = compressPayload(JSON.stringify(buildEvent("typical", eventId, variant)));
        payloads.set(variant, blob);
      }
      eventIds.push(eventId);
      issueIds.push(ids[variant] as number);
      times.push(new Date(now - Math.floor(Math.random() * spanMs)).toISOString());
      blobs.push(blob);
    }
    await t.sql.query(
      `INSERT INTO events (project_id, event_id, received_at, "timestamp", payload, payload_compressed, issue_id, processed_at)
       SELECT $1, e, r, r, 'null'::jsonb, b, i, r
         FROM unnest($2::uuid[], $3::timestamptz[], $4::bytea[], $5::bigint[]) AS u(e, r, b, i)`,
      [projectId, eventIds, times, blobs, issueIds],
    );
    await t.sql.query(
      `INSERT INTO event_ids (project_id, event_id, received_at)
       SELECT $1, e, r FROM unnest($2::uuid[], $3::timestamptz[]) AS u(e, r)`,
      [projectId, eventIds, times],
    );
  }
  // Tag values as the worker counts them (issue_tag_values, migration 0010): a
  // dozen keys per issue, two servers sharing its events, and one row per user.
  await t.sql.query(
    `INSERT INTO issue_tag_values (issue_id, project_id, key, value, times_seen, first_seen, last_seen)
     SELECT i.id, i.project_id, k.key, k.value, greatest(1, round(i.times_seen * k.share))::bigint,
            i.first_seen, i.last_seen
       FROM issues i CROSS JOIN LATERAL (VALUES
         ('environment', CASE WHEN i.short_id % 5 = 0 THEN 'staging' ELSE 'production' END, 1.0),
         ('server_name', 'web-' || (i.short_id % 20), 0.6),
         ('server_name', 'web-' || ((i.short_id + 1) % 20), 0.4),
         ('level', i.level, 1.0),
         ('release', 'bench@1.0.0', 1.0),
         ('runtime', 'node v20.19.0', 1.0),
         ('runtime.name', 'node', 1.0),
         ('os', 'Linux 6.1', 1.0),
         ('os.name', 'Linux', 1.0),
         ('transaction', 'GET /route/' || (i.short_id % 100), 1.0),
         ('url', 'https://api.example/route/' || (i.short_id % 100), 1.0),
         ('handled', CASE WHEN i.short_id % 3 = 0 THEN 'no' ELSE 'yes' END, 1.0)
       ) AS k(key, value, share)
      WHERE i.project_id = $1`,
    [projectId],
  );
  await t.sql.query(
    `INSERT INTO issue_tag_values (issue_id, project_id, key, value, times_seen, first_seen, last_seen)
     SELECT i.id, i.project_id, 'user', 'id:' || u, 1, i.first_seen, i.last_seen
       FROM issues i CROSS JOIN LATERAL generate_series(1, i.user_count::int) AS u
      WHERE i.project_id = $1`,
    [projectId],
  );
  await t.sql.query("ANALYZE issues; ANALYZE events; ANALYZE event_ids; ANALYZE issue_tag_values");
  console.log(
    `seeded ${EVENTS.toLocaleString()} events in ${ISSUES.toLocaleString()} issues in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  await createTestUser(t, "bench@example.com", "sluice", "owner");
  const { cookie } = await signInForm(t, "bench@example.com");
  const get = (path: string) =>
    fetch(`${t.url}${path}`, { redirect: "manual", headers: { cookie } });
  const time = async (path: string): Promise<number> => {
    const begin = performance.now();
    const response = await get(path);
    await response.text();
    if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
    return performance.now() - begin;
  };
  const firstPage = await (await get("/organizations/sluice/issues/")).text();
  const next = /href="([^"]*cursor=[^"]*)">Next page/
    .exec(firstPage)?.[1]
    ?.replaceAll("&amp;", "&");
  const pages: [string, () => string][] = [
    ["issue list (default search)", () => "/organizations/sluice/issues/"],
    ["issue list sorted by events", () => "/organizations/sluice/issues/?sort=freq"],
    ["issue list, second page", () => next ?? "/organizations/sluice/issues/"],
    [
      "issue list, text search",
      () => "/organizations/sluice/issues/?query=is%3Aunresolved+request+4",
    ],
    [
      "issue list, environment:",
      () => "/organizations/sluice/issues/?query=is%3Aunresolved+environment%3Astaging",
    ],
    [
      "issue list, environment selector",
      () => "/organizations/sluice/issues/?environment=production&sort=freq",
    ],
    [
      "issue list, tag search",
      () => "/organizations/sluice/issues/?query=is%3Aunresolved+server_name%3Aweb-3",
    ],
    [
      "issue list, rare tag (1%)",
      () =>
        `/organizations/sluice/issues/?query=${encodeURIComponent('transaction:"GET /route/7"')}`,
    ],
    [
      "issue list, !tag and has:",
      () =>
        `/organizations/sluice/issues/?query=${encodeURIComponent("!environment:production has:handled")}`,
    ],
    [
      "API issues, tag search",
      () =>
        `/api/0/organizations/sluice/issues/?query=${encodeURIComponent("server_name:web-3 os.name:Linux")}`,
    ],
    [
      "issue page (random issue)",
      () => `/organizations/sluice/issues/${ids[Math.floor(Math.random() * ids.length)]}/`,
    ],
  ];
  // --explain: EXPLAIN ANALYZE the issue-list query each page ran (captured from the pool).
  const explain = process.argv.includes("--explain");
  const pool = t.services.db.pool;
  const captured: { text: string; values: unknown[] }[] = [];
  if (explain) {
    const query = pool.query.bind(pool) as (...a: unknown[]) => Promise<unknown>;
    (pool as unknown as { query: (...a: unknown[]) => Promise<unknown> }).query = (...a) => {
      if (typeof a[0] === "string" && /FROM issues i\b/.test(a[0]))
        captured.push({ text: a[0], values: (a[1] as unknown[]) ?? [] });
      return query(...a);
    };
  }
  for (const [name, path] of pages) {
    for (let i = 0; i < 3; i++) await time(path()); // warm up
    const samples: number[] = [];
    for (let i = 0; i < REQUESTS; i++) samples.push(await time(path()));
    samples.sort((a, b) => a - b);
    const at = (q: number) =>
      (samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number).toFixed(1);
    const last = captured.at(-1);
    if (explain && last) {
      const plan = await t.sql.query(`EXPLAIN (ANALYZE, BUFFERS) ${last.text}`, last.values);
      const lines = plan.rows.map((r) => r["QUERY PLAN"] as string);
      console.log(
        `  ${name}: ${lines.filter((l) => /Execution Time|Scan|Sort Method/.test(l)).join("\n    ")}`,
      );
      captured.length = 0;
    }
    console.log(
      `${name.padEnd(34)} p50 ${at(0.5).padStart(7)} ms  p95 ${at(0.95).padStart(7)} ms  max ${at(1).padStart(7)} ms`,
    );
  }
} finally {
  await t.stop();
}
