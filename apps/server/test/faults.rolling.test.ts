import { type ChildProcess, execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, openTestPool, type TestDatabase } from "@sluice/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "./compat-targets.ts";
import { deleteQueueKeys, REDIS_URL, waitFor } from "./harness.ts";
import { createDefaultProject, type NodeProcess, startNode, type Version } from "./processes.ts";
import { freePort, startHaproxy, startLoad } from "./rolling-harness.ts";

const RATE = Number(process.env.SLUICE_FAULT_RATE ?? 100);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Restarts the machine's Redis the way .ci/run starts it: no persistence, so it comes back empty. */
function restartRedis() {
  execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], {
    stdio: "ignore",
  });
  execFileSync("redis-server", [
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
  ]);
}

/** Restarts the machine's Postgres cluster (fast shutdown: every connection is cut). */
function restartPostgres() {
  const version = readdirSync("/etc/postgresql")[0] as string;
  execFileSync(
    "pg_ctlcluster",
    ["--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
    { stdio: "ignore" },
  );
}

describe("faults under load: Redis restarted and flushed, a worker killed, Postgres restarted", () => {
  const children: ChildProcess[] = [];
  let db: TestDatabase;
  let dir: string;
  const prefix = `sluice-faults-${Date.now()}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), "sluice-faults-"));
    chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await waitFor(
      async () => {
        try {
          execFileSync("pg_isready", ["-q", "-h", "127.0.0.1"]);
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      "Postgres back",
    );
    await deleteQueueKeys(prefix);
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("loses no acknowledged event, processes all after recovery, and answers only 2xx or 503 with Retry-After while Postgres is down", async () => {
    const current: Version = { label: "current", root: repoRoot };
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      SLUICE_QUEUE_PREFIX: prefix,
      SLUICE_DATA_DIR: dir,
      SLUICE_DRAIN_DELAY_MS: "500",
      SLUICE_SWEEP_INTERVAL_MS: "1000",
      SLUICE_SWEEP_MIN_AGE_MS: "3000",
    };
    const dsn = await createDefaultProject(current, env);
    const slots = await Promise.all([freePort(), freePort()]);
    await Promise.all(
      slots.map((port) =>
        startNode(current, "ingest,api", { ...env, PORT: String(port) }, children),
      ),
    );
    let worker: NodeProcess = await startNode(current, "worker", env, children);
    const lbPort = await freePort();
    await startHaproxy(dir, lbPort, slots, children);
    await sleep(1_000);

    const url = `http://127.0.0.1:${lbPort}/api/${new URL(dsn).pathname.slice(1)}/envelope/?sentry_key=${new URL(dsn).username}`;
    const load = startLoad(url, RATE, dir, children);

    await sleep(3_000);
    restartRedis();
    await sleep(3_000);
    worker.child.kill("SIGKILL");
    worker = await startNode(current, "worker", env, children);
    await sleep(3_000);
    const postgresDown = Date.now();
    restartPostgres();
    const postgresUp = Date.now();
    await sleep(5_000);
    const results = await load.stop();
    const recoveryMs = 5_000;
    const bad = results.filter((r) => {
      if (r.status === 200) return false;
      const duringOutage =
        r.started >= postgresDown - 1_000 && r.started <= postgresUp + recoveryMs;
      return !(duringOutage && r.status === 503 && /^\d+$/.test(r.retryAfter ?? ""));
    });
    const unavailable = results.filter((r) => r.status === 503).length;
    console.log(
      JSON.stringify({
        faults: {
          sent: results.length,
          acknowledged: results.length - unavailable - bad.length,
          unavailable,
          other: bad.length,
          postgresRestartMs: postgresUp - postgresDown,
        },
      }),
    );
    expect(bad.slice(0, 5)).toEqual([]);

    const acked = results.filter((r) => r.status === 200).map((r) => r.eventId);
    const pool = openTestPool(db.url);
    try {
      await waitFor(
        async () => {
          const r = await pool.query(
            "SELECT count(*) FILTER (WHERE processed_at IS NULL)::int AS open, count(*)::int AS n FROM events",
          );
          return r.rows[0].open === 0 && r.rows[0].n >= acked.length;
        },
        90_000,
        "every event processed after recovery",
      ).catch(async (error) => {
        // Say which events are left and since when, to tell a lost job from a slow one.
        const left = await pool.query(
          `SELECT count(*)::int AS n, min(received_at) AS oldest, max(received_at) AS newest
             FROM events WHERE processed_at IS NULL`,
        );
        throw new Error(
          `${(error as Error).message}: ${JSON.stringify(left.rows[0])}\nworker log:\n${worker
            .log()
            .split("\n")
            .filter((line) => !line.includes('"level":30'))
            .slice(-15)
            .join("\n")}`,
        );
      });
      const stored = await pool.query(
        "SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM events WHERE event_id = ANY($1::uuid[])",
        [acked],
      );
      expect(stored.rows[0]).toEqual({ n: acked.length, d: acked.length });
      const totals = await pool.query(
        "SELECT (SELECT count(*)::int FROM events) AS events, (SELECT sum(times_seen)::int FROM issues) AS seen",
      );
      expect(totals.rows[0].seen).toBe(totals.rows[0].events);
    } finally {
      await pool.end();
    }
  }, 300_000);
});
