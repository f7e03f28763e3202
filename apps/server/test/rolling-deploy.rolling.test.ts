import { type ChildProcess, execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  createTestDatabase,
  migrateTestDatabase,
  openTestPool,
  type TestDatabase,
} from "@sluice/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compatTargets, prepareWorktree, repoRoot } from "./compat-targets.ts";
import { deleteQueueKeys, REDIS_URL, waitFor } from "./harness.ts";
import {
  createDefaultProject,
  type NodeProcess,
  startNode,
  stopNode,
  type Version,
} from "./processes.ts";
import { freePort, latencyFigures, startHaproxy, startLoad } from "./rolling-harness.ts";

const run = promisify(execFile);
/** Events per second of the load; a few hundred in CI (SLUICE_ROLL_RATE). */
const RATE = Number(process.env.SLUICE_ROLL_RATE ?? 200);
const INGEST_NODES = 3;
const BASELINE_MS = 4_000;
/** Longer than HAProxy needs to take a node out (2 checks of up to 1 s, 300 ms apart), as the README asks. */
const DRAIN_DELAY_MS = "3000";

describe("a rolling deploy of every ingest node under load, through HAProxy", () => {
  const children: ChildProcess[] = [];
  let db: TestDatabase;
  let dir: string;
  const prefix = `sluice-roll-${Date.now()}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), "sluice-roll-"));
    chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await deleteQueueKeys(prefix);
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers every request 2xx, loses no event and stores each once", async () => {
    const target = compatTargets()[0];
    const old: Version = target
      ? { label: target.label, root: prepareWorktree(target.commit) }
      : { label: "current", root: repoRoot };
    const current: Version = { label: "current", root: repoRoot };
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      SLUICE_QUEUE_PREFIX: prefix,
      SLUICE_DATA_DIR: dir,
      SLUICE_DRAIN_DELAY_MS: DRAIN_DELAY_MS,
      SLUICE_SWEEP_MIN_AGE_MS: "5000",
    };
    await migrateTestDatabase(db.url);
    const pool = openTestPool(db.url);
    const dsn = await createDefaultProject(current, env);

    const slots = await Promise.all(Array.from({ length: INGEST_NODES * 2 }, freePort));
    const oldNodes: NodeProcess[] = await Promise.all(
      slots
        .slice(0, INGEST_NODES)
        .map((port) => startNode(old, "ingest", { ...env, PORT: String(port) }, children)),
    );
    await startNode(current, "api", env, children);
    let worker = await startNode(current, "worker", env, children);
    const lbPort = await freePort();
    await startHaproxy(dir, lbPort, slots, children);
    await new Promise((r) => setTimeout(r, 1_000));

    const key = new URL(dsn).username;
    const projectId = new URL(dsn).pathname.slice(1);
    const ingestUrl = `http://127.0.0.1:${lbPort}/api/${projectId}/envelope/?sentry_key=${key}&sentry_version=7`;
    const load = startLoad(ingestUrl, RATE, dir, children);
    const sdkDsn = new URL(dsn);
    sdkDsn.host = `127.0.0.1:${lbPort}`;

    await new Promise((r) => setTimeout(r, BASELINE_MS));
    const rollStart = Date.now();
    const sdk = run(
      process.execPath,
      [join(repoRoot, "apps/server/test/clients/node-client.mjs"), sdkDsn.toString()],
      { timeout: 60_000 },
    );
    for (let i = 0; i < INGEST_NODES; i++) {
      const fresh = await startNode(
        current,
        "ingest",
        { ...env, PORT: String(slots[INGEST_NODES + i]) },
        children,
      );
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${fresh.port}/readyz`)).status === 200,
        10_000,
        "new node ready",
      );
      await new Promise((r) => setTimeout(r, 700));
      await stopNode(oldNodes[i] as NodeProcess);
    }
    await stopNode(worker);
    worker = await startNode(current, "worker", env, children);
    const rollEnd = Date.now();
    await sdk;
    await new Promise((r) => setTimeout(r, 2_000));
    const results = await load.stop();
    const failures = results.filter((r) => r.status !== 200);
    const before = latencyFigures(results.filter((r) => r.started < rollStart).map((r) => r.ms));
    const during = latencyFigures(
      results.filter((r) => r.started >= rollStart && r.started <= rollEnd).map((r) => r.ms),
    );
    const seconds =
      (Math.max(...results.map((r) => r.started)) - Math.min(...results.map((r) => r.started))) /
      1000;
    console.log(
      JSON.stringify({
        rolling: {
          rate: RATE,
          sent: results.length,
          eventsPerSecond: Math.round(results.length / seconds),
          rollSeconds: (rollEnd - rollStart) / 1000,
          before,
          during,
          failures: failures.length,
        },
      }),
    );
    expect(failures.slice(0, 5)).toEqual([]);

    const acked = results.map((r) => r.eventId);
    const sdkEvents = 13;
    await waitFor(
      async () =>
        (await pool.query("SELECT count(*)::int AS n FROM events WHERE processed_at IS NULL"))
          .rows[0].n === 0 &&
        (await pool.query("SELECT count(*)::int AS n FROM events")).rows[0].n >=
          acked.length + sdkEvents,
      60_000,
      "every event stored and processed",
    );
    const stored = await pool.query(
      "SELECT event_id::text AS id, count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[]) GROUP BY event_id",
      [acked],
    );
    expect(stored.rowCount).toBe(acked.length);
    expect(stored.rows.every((r) => r.n === 1)).toBe(true);
    const totals = await pool.query(
      "SELECT (SELECT count(*)::int FROM events) AS events, (SELECT sum(times_seen)::int FROM issues) AS seen",
    );
    expect(totals.rows[0]).toEqual({
      events: acked.length + sdkEvents,
      seen: acked.length + sdkEvents,
    });
    await pool.end();
  }, 300_000);
});
