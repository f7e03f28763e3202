import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ensureEventPartitions,
  finishLease,
  setProjectRetentionDays,
  tryTakeLease,
} from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { retentionOptions } from "../src/retention/maintenance-lease.ts";
import { type RetentionOptions, runRetention } from "../src/retention/run-retention.ts";
import { maintenanceTick } from "../src/worker/background-loops.ts";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

const run = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const DAY_MS = 86_400_000;

const newId = () => crypto.randomUUID().replaceAll("-", "");

/** An envelope with one event (a message and `extraBytes` of random extra data) and optional attachments. */
function envelope(
  id: string,
  message: string,
  options: { extraBytes?: number; attachments?: Buffer[] } = {},
): Buffer {
  const event = JSON.stringify({
    event_id: id,
    message,
    level: "error",
    user: { id: `u-${id.slice(0, 6)}` },
    extra: { padding: randomBytes(options.extraBytes ?? 0).toString("hex") },
  });
  const parts: Buffer[] = [Buffer.from(`{"event_id":"${id}"}\n{"type":"event"}\n${event}\n`)];
  for (const [i, bytes] of (options.attachments ?? []).entries()) {
    parts.push(
      Buffer.from(
        `{"type":"attachment","length":${bytes.length},"filename":"a${i}.bin","content_type":"application/octet-stream"}\n`,
      ),
      bytes,
      Buffer.from("\n"),
    );
  }
  return Buffer.concat(parts);
}

/** Bytes on disk of every partition of `events` (the parent itself has none). */
async function eventsBytes(t: TestSluice): Promise<number> {
  const result = await t.sql.query(
    `SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint AS bytes
       FROM pg_inherits WHERE inhparent = 'events'::regclass`,
  );
  return Number(result.rows[0].bytes);
}

function partitionOf(day: Date): string {
  return `events_p${day.toISOString().slice(0, 10).replaceAll("-", "")}`;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

describe("retention", () => {
  let t: TestSluice;
  let ingestUrl: string;
  const options = (overrides: Partial<RetentionOptions>): RetentionOptions =>
    retentionOptions(t.config, t.services, t.services.instanceId, {
      blobGraceMs: 0,
      ...overrides,
    });

  const post = async (url: string, body: Buffer) => {
    const started = performance.now();
    const response = await fetch(url, { method: "POST", body });
    await response.arrayBuffer();
    return { status: response.status, ms: performance.now() - started };
  };

  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    ingestUrl = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
    await ensureEventPartitions(t.services.db.pool, new Date(), 12, 3);
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** Moves events (and what hangs off them) `days` back in time, as if received then. */
  async function age(ids: string[], days: number) {
    const interval = `${days} days`;
    await t.sql.query(
      "UPDATE events SET received_at = received_at - $2::interval WHERE event_id = ANY ($1::uuid[])",
      [ids, interval],
    );
    await t.sql.query(
      "UPDATE event_ids SET received_at = received_at - $2::interval WHERE event_id = ANY ($1::uuid[])",
      [ids, interval],
    );
    await t.sql.query(
      "UPDATE attachments SET created_at = created_at - $2::interval WHERE event_id = ANY ($1::uuid[])",
      [ids, interval],
    );
  }

  it("drops expired days, frees their share of the disk, and deletes what only they referred to", async () => {
    const sharedBlob = randomBytes(3000);
    const oldOnlyBlob = randomBytes(3000);
    const oldIds: string[] = [];
    const newIds: string[] = [];
    const send = async (
      ids: string[],
      count: number,
      message: (i: number) => string,
      withAttachments: boolean,
    ) => {
      for (let i = 0; i < count; i += 20) {
        const batch = Array.from({ length: Math.min(20, count - i) }, (_, k) => {
          const id = newId();
          ids.push(id);
          const n = i + k;
          const attachments = !withAttachments
            ? []
            : n === 0
              ? [sharedBlob, oldOnlyBlob]
              : n === 1
                ? [sharedBlob]
                : [];
          return post(ingestUrl, envelope(id, message(n), { extraBytes: 2000, attachments }));
        });
        for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
      }
    };
    // 300 old events: most in an issue of their own, a few in one that lives on.
    await send(oldIds, 300, (n) => (n % 10 === 0 ? "shared beta" : "old alpha"), true);
    await waitFor(
      async () => (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      60_000,
      "old events processed",
    );
    await age(oldIds, 3);
    await t.sql.query(
      "UPDATE issues SET last_seen = last_seen - interval '3 days', first_seen = first_seen - interval '3 days'",
    );
    // 300 new events, one sharing the first attachment's bytes.
    await send(newIds, 300, (n) => (n % 10 === 0 ? "shared beta" : "new gamma"), false);
    await post(ingestUrl, envelope(newId(), "new gamma", { attachments: [sharedBlob] }));
    await waitFor(
      async () => (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      60_000,
      "new events processed",
    );
    // Compact the partitions, so bytes follow rows (the UPDATE left dead rows behind).
    const today = new Date();
    const oldDay = new Date(today.getTime() - 3 * DAY_MS);
    await t.sql.query(`VACUUM FULL ${partitionOf(today)}`);
    await t.sql.query(`VACUUM FULL ${partitionOf(oldDay)}`);
    // An upload chunk never assembled, two days old; outcomes 100 and 400 days old.
    const chunk = await t.services.blobs.put("chunks", randomBytes(100));
    await t.sql.query(
      `INSERT INTO upload_chunks (organization_id, sha1, size, blob_key, created_at)
       SELECT organization_id, $1, 100, $2, now() - interval '2 days' FROM projects WHERE id = $3`,
      [chunk.sha1, chunk.key, t.projectId],
    );
    await t.sql.query(
      `INSERT INTO outcomes (project_id, hour, outcome, category, quantity)
       VALUES ($1, date_trunc('hour', now()) - interval '100 days', 'accepted', 'error', 5),
              ($1, date_trunc('hour', now()) - interval '400 days', 'accepted', 'error', 7)`,
      [t.projectId],
    );
    await t.sql.query(
      `INSERT INTO event_failures (project_id, event_id, received_at, failures)
       VALUES ($1, $2, now() - interval '3 days', 5), ($1, $3, now(), 1)`,
      [t.projectId, oldIds[5], newIds[5]],
    );
    const oldIssue = await t.sql.query("SELECT id FROM issues WHERE title = 'old alpha'");
    expect(oldIssue.rowCount).toBe(1);
    const oldIssueId = oldIssue.rows[0].id;
    const blobKeys = await t.sql.query(
      "SELECT DISTINCT blob_key, sha1 FROM attachments WHERE event_id = ANY ($1::uuid[])",
      [oldIds.slice(0, 1)],
    );
    const oldOnlyKey = blobKeys.rows.find(
      (r) => r.sha1 === createHash("sha1").update(oldOnlyBlob).digest("hex"),
    )?.blob_key as string;
    const sharedKey = blobKeys.rows.find((r) => r.blob_key !== oldOnlyKey)?.blob_key as string;
    expect(oldOnlyKey && sharedKey).toBeTruthy();

    const before = await eventsBytes(t);
    const dry = await runRetention(t.services, options({ retentionDays: 2, dryRun: true }));
    expect(dry.partitions.map((p) => p.name)).toContain(partitionOf(oldDay));
    expect(dry.eventIds).toBe(300);
    expect(await eventsBytes(t)).toBe(before);
    expect(await countRows(t.sql, "event_ids")).toBe(601);

    const progress: string[] = [];
    const report = await runRetention(
      t.services,
      options({ retentionDays: 2, onProgress: (step) => progress.push(step) }),
    );
    const after = await eventsBytes(t);
    const rowShare = 300 / 601;
    const byteShare = (before - after) / before;
    console.log(
      `retention: events partitions ${before} -> ${after} bytes (fell ${(byteShare * 100).toFixed(1)}%; dropped rows ${(rowShare * 100).toFixed(1)}% of all)`,
    );
    expect(report.complete).toBe(true);
    expect(report.partitions.map((p) => p.name)).toContain(partitionOf(oldDay));
    expect(byteShare).toBeGreaterThan(rowShare - 0.1);
    expect(byteShare).toBeLessThan(rowShare + 0.1);
    expect(await countRows(t.sql, "events")).toBe(301);
    expect(report.eventIds).toBe(300);
    expect(report.eventFailures).toBe(1);
    expect(await countRows(t.sql, "event_failures")).toBe(1);
    expect(await countRows(t.sql, "event_ids")).toBe(301);
    // The issue whose events all expired is gone with its hashes and users; the others stay.
    expect(report.issues).toBe(1);
    expect(await countRows(t.sql, "issues", `id = ${oldIssueId}`)).toBe(0);
    expect(await countRows(t.sql, "issue_hashes", `issue_id = ${oldIssueId}`)).toBe(0);
    expect(await countRows(t.sql, "issue_users", `issue_id = ${oldIssueId}`)).toBe(0);
    expect(await countRows(t.sql, "issues")).toBe(2);
    // Attachments: the old ones went; a blob still referred to stays, the other goes.
    expect(report.attachments).toBe(3);
    expect(await countRows(t.sql, "attachments")).toBe(1);
    expect(await t.services.blobs.get(sharedKey)).not.toBeNull();
    expect(await t.services.blobs.get(oldOnlyKey)).toBeNull();
    expect(await t.services.blobs.get(chunk.key)).toBeNull();
    expect(report.uploadChunks).toBe(1);
    // Outcomes have their own, longer retention.
    expect(report.outcomes).toBe(1);
    expect(await countRows(t.sql, "outcomes", "quantity = 5")).toBe(1);
    expect(await countRows(t.sql, "blob_deletions")).toBe(0);
    expect(progress).toContain("partitions");
    const metrics = await (await fetch(`${t.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/sluice_retention_deleted_total\{kind="partitions"\} [1-9]/);
  });

  it("keeps ingest answering while it drops partitions, and gives up a lock it cannot get in time", async () => {
    // Five old days of 3,000 rows each, written straight into their partitions.
    const now = new Date();
    await ensureEventPartitions(t.services.db.pool, now, 12, 0);
    for (let d = 6; d <= 10; d++) {
      await t.sql.query(
        `INSERT INTO events (project_id, event_id, received_at, "timestamp", payload, processed_at)
         SELECT $1, gen_random_uuid(), $2::timestamptz + (g || ' seconds')::interval, $2::timestamptz,
                jsonb_build_object('message', repeat('x', 500)), now()
           FROM generate_series(1, 3000) g`,
        [t.projectId, new Date(now.getTime() - d * DAY_MS).toISOString().slice(0, 10)],
      );
    }
    let loading = true;
    const latencies: { at: number; ms: number; status: number }[] = [];
    const load = Array.from({ length: 4 }, async () => {
      while (loading) {
        const r = await post(ingestUrl, envelope(newId(), "load delta"));
        latencies.push({ at: performance.now(), ms: r.ms, status: r.status });
      }
    });
    let blockedFrom = 0;
    let blockedTo = 0;
    let dropFrom = 0;
    let dropTo = 0;
    let report: Awaited<ReturnType<typeof runRetention>>;
    try {
      await new Promise((r) => setTimeout(r, 2_000));

      // A reader holding a lock on events: every DETACH attempt times out, ingest goes on.
      const blocker = await t.services.db.pool.connect();
      await blocker.query("BEGIN; SELECT count(*) FROM events");
      blockedFrom = performance.now();
      const blocked = await runRetention(
        t.services,
        options({ retentionDays: 5, lockTimeoutMs: 100, lockAttempts: 2 }),
      );
      blockedTo = performance.now();
      await blocker.query("COMMIT");
      blocker.release();
      expect(blocked.partitions).toEqual([]);
      // Days 6 to 12 back (ensureEventPartitions made them), five with rows.
      expect(blocked.partitionsSkipped.length).toBe(7);

      dropFrom = performance.now();
      report = await runRetention(t.services, options({ retentionDays: 5 }));
      dropTo = performance.now();
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      loading = false;
      await Promise.all(load);
    }

    expect(report.partitions.length).toBe(7);
    expect(latencies.every((l) => l.status === 200)).toBe(true);
    const during = (from: number, to: number) =>
      latencies.filter((l) => l.at >= from && l.at <= to + 50).map((l) => l.ms);
    const baseline = latencies.filter((l) => l.at < blockedFrom).map((l) => l.ms);
    const dropping = during(dropFrom, dropTo);
    const waiting = during(blockedFrom, blockedTo);
    console.log(
      `ingest latency (ms): baseline p50 ${percentile(baseline, 50).toFixed(1)} p99 ${percentile(baseline, 99).toFixed(1)} (n=${baseline.length}); ` +
        `during the drop of 7 partitions (5 x 3,000 rows) (${(dropTo - dropFrom).toFixed(0)} ms) p50 ${percentile(dropping, 50).toFixed(1)} p99 ${percentile(dropping, 99).toFixed(1)} max ${Math.max(...dropping, 0).toFixed(1)} (n=${dropping.length}); ` +
        `while DETACH waited on a reader's lock (lock_timeout 100 ms) p99 ${percentile(waiting, 99).toFixed(1)} max ${Math.max(...waiting, 0).toFixed(1)} (n=${waiting.length})`,
    );
  });

  it("runs in the hourly maintenance under its lease, which it then keeps idle for the next hour", async () => {
    const day = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - 100 * DAY_MS);
    const old = partitionOf(day);
    const createOld = () =>
      t.sql.query(
        `CREATE TABLE ${old} PARTITION OF events FOR VALUES FROM ('${day.toISOString()}') TO ('${new Date(day.getTime() + DAY_MS).toISOString()}')`,
      );
    await createOld();
    expect(await countRows(t.sql, "pg_class", `relname = '${old}'`)).toBe(1);
    await t.sql.query("DELETE FROM leases WHERE name = 'maintenance'");
    await maintenanceTick(t.services, () => false);
    // SLUICE_RETENTION_DAYS is 90 by default: the 100-day-old partition is gone.
    expect(await countRows(t.sql, "pg_class", `relname = '${old}'`)).toBe(0);
    const lease = await t.sql.query(
      "SELECT holder, expires_at > now() + interval '50 minutes' AS idle_long FROM leases WHERE name = 'maintenance'",
    );
    expect(lease.rows).toEqual([{ holder: `idle:${t.services.instanceId}`, idle_long: true }]);
    // The same node's next turn within the hour does nothing.
    await createOld();
    await maintenanceTick(t.services, () => false);
    expect(await countRows(t.sql, "pg_class", `relname = '${old}'`)).toBe(1);
    await t.sql.query(`DROP TABLE ${old}`);
  });

  it("applies a project's shorter retention without dropping partitions", async () => {
    const other = await createProjectWithKey(t.services, "sluice", "short-lived");
    expect(await setProjectRetentionDays(t.sql, other.project.id, 1)).toBe(true);
    const otherUrl = `${t.url}/api/${other.project.id}/envelope/?sentry_key=${new URL(other.dsn).username}`;
    const shortIds = [newId(), newId()];
    const longIds = [newId()];
    const attachment = randomBytes(500);
    for (const id of shortIds)
      expect(
        (await post(otherUrl, envelope(id, "short epsilon", { attachments: [attachment] }))).status,
      ).toBe(200);
    for (const id of longIds)
      expect(
        (await post(ingestUrl, envelope(id, "long zeta", { attachments: [attachment] }))).status,
      ).toBe(200);
    await waitFor(
      async () => (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      30_000,
      "processed",
    );
    await age([...shortIds, ...longIds], 2);
    await t.sql.query(
      "UPDATE issues SET last_seen = last_seen - interval '2 days' WHERE title IN ('short epsilon', 'long zeta')",
    );
    // Read time: the project's events older than its retention are not shown, others are.
    const eventStatus = async (project: string, id: string) =>
      (await api(t, `/api/0/projects/sluice/${project}/events/${id}/`)).status;
    expect(await eventStatus("short-lived", shortIds[0] as string)).toBe(404);
    expect(await eventStatus("default", longIds[0] as string)).toBe(200);
    await setProjectRetentionDays(t.sql, other.project.id, null);
    expect(await eventStatus("short-lived", shortIds[0] as string)).toBe(200);
    await setProjectRetentionDays(t.sql, other.project.id, 1);
    const partitionsBefore = await countRows(
      t.sql,
      "pg_inherits",
      "inhparent = 'events'::regclass",
    );
    const report = await runRetention(t.services, options({ retentionDays: 30 }));
    expect(report.partitions).toEqual([]);
    expect(await countRows(t.sql, "pg_inherits", "inhparent = 'events'::regclass")).toBe(
      partitionsBefore,
    );
    expect(await countRows(t.sql, "issues", "title = 'short epsilon'")).toBe(0);
    expect(await countRows(t.sql, "issues", "title = 'long zeta'")).toBe(1);
    expect(await countRows(t.sql, "attachments", `project_id = ${other.project.id}`)).toBe(0);
    expect(await countRows(t.sql, "attachments", `project_id = ${t.projectId}`)).toBeGreaterThan(0);
    // The blob is shared with the project that keeps its events: it stays.
    const kept = await t.sql.query("SELECT blob_key FROM attachments WHERE event_id = $1", [
      longIds[0],
    ]);
    expect(await t.services.blobs.get(kept.rows[0].blob_key)).not.toBeNull();
  });

  it("`sluice retention` sets a project's retention, runs at once past an idle lease, and waits boundedly for a running one", async () => {
    const bin = join(root, "apps/server/bin/sluice.js");
    expect(existsSync(bin)).toBe(true);
    const env = { ...process.env, DATABASE_URL: t.config.databaseUrl ?? "", LOG_LEVEL: "warn" };
    delete (env as NodeJS.ProcessEnv).REDIS_URL;
    const cli = (...args: string[]) =>
      run(process.execPath, [bin, ...args], { env }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }),
      );
    let r = await cli("retention", "set", "sluice/short-lived", "100000");
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/at most the instance's retention/);
    r = await cli("retention", "set", "sluice/short-lived", "7");
    expect(r).toMatchObject({ code: 0 });
    expect(
      (await t.sql.query("SELECT retention_days FROM projects WHERE slug = 'short-lived'")).rows[0]
        .retention_days,
    ).toBe("7");

    // A node's run in progress: the command waits --wait seconds, then names it.
    const pool = t.services.db.pool;
    await t.sql.query("DELETE FROM leases WHERE name = 'maintenance'");
    expect(await tryTakeLease(pool, "maintenance", "node-a", 60_000)).toBe(true);
    r = await cli("retention", "run", "--wait", "1");
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/maintenance is running on node-a/);
    // That node finished and keeps the lease idle for its next hour: the command runs now.
    await finishLease(pool, "maintenance", "node-a", 3_600_000);
    r = await cli("retention", "run", "--wait", "0");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/dropped 0 partition\(s\)/);
    r = await cli("retention", "run", "--dry-run");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/would drop/);
  }, 120_000);
});
