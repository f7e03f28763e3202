/**
 * `npx tsx bench/web-pages.ts [--events=100000] [--issues=5000] [--requests=60]`:
 * the server time of the web pages on a project of that size (issue #20:
 * 100,000 events in 5,000 issues, p95 under 200 ms). Seeds one project of a
 * test Sluice through SQL (typical @sentry/node errors, compressed as
 * SLUICE_PAYLOAD_STORAGE=compressed stores them, received over the last two
 * days), then times sequential GETs over loopback of the issue list (default
 * search, sorted by events, the second page, a text search) and of issue
 * pages of random issues. Loopback adds well under a millisecond, so the
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
  await t.sql.query("ANALYZE issues; ANALYZE events; ANALYZE event_ids");
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
      "issue page (random issue)",
      () => `/organizations/sluice/issues/${ids[Math.floor(Math.random() * ids.length)]}/`,
    ],
  ];
  for (const [name, path] of pages) {
    for (let i = 0; i < 3; i++) await time(path()); // warm up
    const samples: number[] = [];
    for (let i = 0; i < REQUESTS; i++) samples.push(await time(path()));
    samples.sort((a, b) => a - b);
    const at = (q: number) =>
      (samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number).toFixed(1);
    console.log(
      `${name.padEnd(30)} p50 ${at(0.5).padStart(7)} ms  p95 ${at(0.95).padStart(7)} ms  max ${at(1).padStart(7)} ms`,
    );
  }
} finally {
  await t.stop();
}
