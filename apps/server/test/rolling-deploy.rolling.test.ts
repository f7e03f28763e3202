import { type ChildProcess, execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTestDatabase, openTestPool, type TestDatabase } from "@sluice/db/testing";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareWorktree, repoRoot, rollingTargets } from "./compat-targets.ts";
import { deleteQueueKeys, REDIS_URL, waitFor } from "./harness.ts";
import {
  createDefaultProject,
  type NodeProcess,
  runSluice,
  startNode,
  stopNode,
  type Version,
} from "./processes.ts";
import {
  appliedMigrationNames,
  cpuBetween,
  freePort,
  type LoadResult,
  latencyFigures,
  machineCpu,
  migrationFigures,
  migrationNames,
  migrationsAppliedBy,
  startHaproxy,
  startLoad,
  warningCounts,
} from "./rolling-harness.ts";

const run = promisify(execFile);
/** Events per second of the load; a few hundred in CI (SLUICE_ROLL_RATE). */
const RATE = Number(process.env.SLUICE_ROLL_RATE ?? 200);
const INGEST_NODES = 3;
/** Load before the first node is replaced, for the "before" latency figures. */
const BASELINE_MS = 3_000;
/** Longer than HAProxy needs to take a node out (2 checks of up to 1 s, 300 ms apart), as the README asks. */
const DRAIN_DELAY_MS = "3000";
/**
 * What the orchestrator waits after SIGTERM before SIGKILL: the README's
 * `terminationGracePeriodSeconds` (45 s), above drain delay plus
 * `SLUICE_SHUTDOWN_TIMEOUT_MS`. A node of the current code must exit by
 * itself within it. Release 0.1.0 has no shutdown budget and its worker's
 * sweeper re-lists the oldest 1000 unprocessed events until fewer are left
 * (fixed in 316019b), so with a backlog it never exits: it is SIGKILLed, as
 * Kubernetes would, and the figures say so (safe for a worker: its jobs run
 * again; any lost answer or event still fails the roll).
 */
const GRACE_MS = 45_000;
/** How long the processing backlog may stay the same before the test gives up on it. */
const NO_PROGRESS_MS = 30_000;
/** node-client.mjs sends 13 events through a real @sentry/node. */
const SDK_EVENTS = 13;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const current: Version = { label: "current", root: repoRoot };

/**
 * Servers HAProxy took out during a roll (three are the nodes stopped on
 * purpose) and how often it had none left, when it answers 503 itself.
 */
function balancerEvents(log: string) {
  return {
    serversDown: (log.match(/ is DOWN/g) ?? []).length,
    noServerAvailable: (log.match(/has no server available/g) ?? []).length,
  };
}

/** What one roll (forward or back) saw. */
type Roll = {
  results: LoadResult[];
  /** The first node of the new version: it applies whatever migrations are pending. */
  first: NodeProcess;
  /** From spawning the first new node until it answered /readyz 200 (epoch ms). */
  firstWindow: [number, number];
  /** HAProxy's and the machine's figures, repeated in a failed assertion's message. */
  conditions: string;
};

/**
 * What an operator does, twice per release: the database holds only the old
 * release's schema, applied by the old release's own `sluice migrate apply`;
 * its nodes (three ingest behind HAProxy, one API node, one worker) take
 * load; each node is replaced by the current code one at a time, and the
 * first new node applies this release's migrations while the old nodes
 * serve. Then the rollback an SRE reaches for first: every new node replaced
 * by the old release again, under load, on the migrated schema. Both rolls
 * answer every request 2xx and store every acknowledged event exactly once.
 * From the older target this is a two-release jump in one step.
 */
describe.each(rollingTargets())(
  "rolling $label to the current code and back, under load through HAProxy",
  (target) => {
    const children: ChildProcess[] = [];
    const prefix = `sluice-roll-${target.commit.slice(0, 8)}-${Date.now()}`;
    let db: TestDatabase;
    let pool: pg.Pool;
    let dir: string;
    let old: Version;
    let env: Record<string, string>;
    /** HAProxy's six server slots: three hold the running ingest nodes, three are free for the next. */
    let slots: number[];
    const ingest = new Map<number, NodeProcess>();
    let api: NodeProcess;
    let worker: NodeProcess;
    let ingestUrl: string;
    let sdkDsn: string;
    /** Events the database must hold in the end: every acknowledged one plus the SDK's. */
    let expectedEvents = 0;
    /** HAProxy's alerts (servers going up and down), to tell its own 503s from Sluice's. */
    let haproxyLog = "";

    beforeAll(async () => {
      old = { label: target.label, root: prepareWorktree(target.commit) };
      db = await createTestDatabase();
      dir = mkdtempSync(join(tmpdir(), "sluice-roll-"));
      chmodSync(dir, 0o755);
      env = {
        DATABASE_URL: db.url,
        REDIS_URL,
        SLUICE_QUEUE_PREFIX: prefix,
        SLUICE_DATA_DIR: dir,
        SLUICE_DRAIN_DELAY_MS: DRAIN_DELAY_MS,
        SLUICE_SWEEP_MIN_AGE_MS: "5000",
        // The test's steady 200 events/s (12,000 a minute) from a project with no
        // history is a spike to release 0.3.0's default floor (1,000 a minute),
        // which would answer it 429: the roll tests deploys, not spike protection.
        SLUICE_SPIKE_FLOOR_PER_MINUTE: "10000000",
      };
      // The old release's schema only, applied by its own command from its own migrations/.
      await runSluice(old, env, "migrate", "apply");
      pool = openTestPool(db.url);
      expect(await appliedMigrationNames(pool)).toEqual(migrationNames(old.root));
      const dsn = await createDefaultProject(old, env);

      slots = await Promise.all(Array.from({ length: INGEST_NODES * 2 }, freePort));
      const started = await Promise.all([
        ...slots
          .slice(0, INGEST_NODES)
          .map((port) => startNode(old, "ingest", { ...env, PORT: String(port) }, children)),
        startNode(old, "api", env, children),
        startNode(old, "worker", env, children),
      ]);
      started.slice(0, INGEST_NODES).forEach((node, i) => {
        ingest.set(slots[i] as number, node);
      });
      [api, worker] = started.slice(INGEST_NODES) as [NodeProcess, NodeProcess];
      const lbPort = await freePort();
      const haproxy = await startHaproxy(dir, lbPort, slots, children);
      haproxy.stderr?.on("data", (chunk) => {
        haproxyLog += chunk;
      });
      await sleep(1_000);

      const key = new URL(dsn).username;
      const projectId = new URL(dsn).pathname.slice(1);
      ingestUrl = `http://127.0.0.1:${lbPort}/api/${projectId}/envelope/?sentry_key=${key}&sentry_version=7`;
      const sdkUrl = new URL(dsn);
      sdkUrl.host = `127.0.0.1:${lbPort}`;
      sdkDsn = sdkUrl.toString();
    }, 600_000);

    afterAll(async () => {
      for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
      await pool?.end();
      await deleteQueueKeys(prefix);
      await db?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /**
     * Replaces every node with `to` under load: each ingest node one at a
     * time (start the new one in a free slot, wait until it is ready and in
     * HAProxy's pool, SIGTERM an old one), then the worker and the API node.
     * A real @sentry/node sends its events meanwhile. Prints the figures and
     * returns every answer the load client saw.
     */
    async function rollUnderLoad(to: Version, name: string): Promise<Roll> {
      const from = [...ingest.values()][0]?.label ?? "";
      const load = startLoad(ingestUrl, RATE, dir, children);
      await sleep(BASELINE_MS);
      const rollStart = Date.now();
      const cpuAtStart = machineCpu();
      const sdk = run(
        process.execPath,
        [join(repoRoot, "apps/server/test/clients/node-client.mjs"), sdkDsn],
        { timeout: 120_000 },
      );
      const nodes: NodeProcess[] = [...ingest.values(), api, worker];
      const logged = new Map(nodes.map((node) => [node, node.log().length]));
      const haproxyFrom = haproxyLog.length;
      /** Old-release nodes that did not exit within GRACE_MS of SIGTERM and were SIGKILLed. */
      const killed: string[] = [];
      const retire = async (node: NodeProcess) => {
        const outcome = await stopNode(node, {
          graceMs: GRACE_MS,
          killAfterGrace: !node.label.startsWith(current.label),
        });
        if (outcome === "killed") killed.push(node.label);
      };
      let first: NodeProcess | undefined;
      let firstWindow: [number, number] = [0, 0];
      for (const [slot, leaving] of [...ingest]) {
        const free = slots.find((s) => !ingest.has(s)) as number;
        const spawned = Date.now();
        const fresh = await startNode(to, "ingest", { ...env, PORT: String(free) }, children);
        nodes.push(fresh);
        await waitFor(
          async () => (await fetch(`http://127.0.0.1:${fresh.port}/readyz`)).status === 200,
          15_000,
          `${fresh.label} ready`,
        );
        if (!first) {
          first = fresh;
          firstWindow = [spawned, Date.now()];
        }
        ingest.set(free, fresh);
        await sleep(700);
        ingest.delete(slot);
        await retire(leaving);
      }
      const [freshApi, freshWorker] = await Promise.all([
        startNode(to, "api", env, children),
        startNode(to, "worker", env, children),
      ]);
      await Promise.all([retire(api), retire(worker)]);
      [api, worker] = [freshApi, freshWorker];
      nodes.push(api, worker);
      const rollEnd = Date.now();
      const cpuAtEnd = machineCpu();
      await sdk;
      await sleep(2_000);
      const results = await load.stop();

      const between = (a: number, b: number) =>
        latencyFigures(results.filter((r) => r.started >= a && r.started <= b).map((r) => r.ms));
      const starts = results.map((r) => r.started);
      const seconds = (Math.max(...starts) - Math.min(...starts)) / 1000;
      const balancer = balancerEvents(haproxyLog.slice(haproxyFrom));
      const machine = cpuBetween(cpuAtStart, cpuAtEnd);
      const conditions = `HAProxy had no server ready ${balancer.noServerAvailable} times${
        machine
          ? `; the machine's CPU was ${Math.round(machine.busyShare * 100)}% busy, load ${machine.loadAverage.join(" → ")} on ${machine.cores} cores`
          : ""
      }`;
      console.log(
        JSON.stringify({
          [name]: {
            from,
            to: to.label,
            rate: RATE,
            sent: results.length,
            eventsPerSecond: Math.round(results.length / seconds),
            rollSeconds: (rollEnd - rollStart) / 1000,
            firstNodeSeconds: (firstWindow[1] - firstWindow[0]) / 1000,
            migrationsApplied: first ? migrationsAppliedBy(first).length : 0,
            migrations: first ? migrationFigures(first) : null,
            before: between(0, rollStart - 1),
            whileFirstNodeStarts: between(...firstWindow),
            during: between(rollStart, rollEnd),
            failures: results.filter((r) => r.status !== 200).length,
            killedAfterGrace: killed,
            warnings: warningCounts(nodes, logged),
            balancer,
            machine,
          },
        }),
      );
      return { results, first: first as NodeProcess, firstWindow, conditions };
    }

    /** Every answer 2xx; every acknowledged event stored once and processed; nothing else stored. */
    async function expectEveryEventStoredOnce(roll: Roll) {
      // Counted before any assertion, so that a failed roll forward leaves the rollback's counts right.
      const acked = roll.results.filter((r) => r.status === 200).map((r) => r.eventId);
      expectedEvents += acked.length + SDK_EVENTS;
      const failures = roll.results.filter((r) => r.status !== 200);
      // Soft: a roll with failed answers still checks that no acknowledged event was lost.
      expect
        .soft(
          failures.slice(0, 5),
          `${failures.length} of ${roll.results.length} answers failed; ${roll.conditions}`,
        )
        .toEqual([]);
      // The SDK does not retry either: when HAProxy refused answers (the roll failed just above),
      // some of its events may have been refused too, so only a floor is known, and the count the
      // next roll builds on is what was stored.
      const floor = expectedEvents - (failures.length > 0 ? SDK_EVENTS : 0);
      // As long as the backlog shrinks (a starved worker is slow, not wrong); a lost event stalls it.
      let seen = "";
      let progressAt = Date.now();
      for (;;) {
        const { pending, stored } = (
          await pool.query(
            "SELECT count(*) FILTER (WHERE processed_at IS NULL)::int AS pending, count(*)::int AS stored FROM events",
          )
        ).rows[0] as { pending: number; stored: number };
        if (pending === 0 && stored >= floor) break;
        if (`${pending}/${stored}` !== seen) {
          seen = `${pending}/${stored}`;
          progressAt = Date.now();
        } else if (Date.now() - progressAt > NO_PROGRESS_MS) {
          throw new Error(
            `no progress for ${NO_PROGRESS_MS / 1000} s: ${pending} events unprocessed, ${stored} of ${floor} stored`,
          );
        }
        await sleep(500);
      }
      const stored = await pool.query(
        "SELECT event_id::text AS id, count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[]) GROUP BY event_id",
        [acked],
      );
      expect(stored.rowCount).toBe(acked.length);
      expect(stored.rows.filter((r) => r.n !== 1)).toEqual([]);
      const totals = await pool.query(
        "SELECT (SELECT count(*)::int FROM events) AS events, (SELECT sum(times_seen)::int FROM issues) AS seen",
      );
      const { events } = totals.rows[0] as { events: number };
      if (floor < expectedEvents && events >= floor && events <= expectedEvents)
        expectedEvents = events;
      expect(totals.rows[0]).toEqual({ events: expectedEvents, seen: expectedEvents });
    }

    it("rolls to the current code, the first new node migrating while the old ones serve: every answer 2xx, every event stored once", async () => {
      const ownMigrations = migrationNames(old.root);
      const pending = migrationNames(repoRoot).filter((name) => !ownMigrations.includes(name));
      const roll = await rollUnderLoad(current, "rolling");

      expect(migrationsAppliedBy(roll.first)).toEqual(pending);
      expect(await appliedMigrationNames(pool)).toEqual(migrationNames(repoRoot));
      // The old nodes answered (2xx, checked below) while the first new node migrated.
      expect(
        roll.results.filter(
          (r) => r.started >= roll.firstWindow[0] && r.started <= roll.firstWindow[1],
        ).length,
      ).toBeGreaterThan(0);
      await expectEveryEventStoredOnce(roll);
    });

    it("rolls back to the old release on the migrated schema: every answer 2xx, every event stored once", async () => {
      expect(api.label).toBe("current api");
      const roll = await rollUnderLoad(old, "rollback");

      expect(await appliedMigrationNames(pool)).toEqual(migrationNames(repoRoot));
      expect([...ingest.values(), api, worker].map((n) => n.label)).toEqual([
        ...Array.from({ length: INGEST_NODES }, () => `${old.label} ingest`),
        `${old.label} api`,
        `${old.label} worker`,
      ]);
      await expectEveryEventStoredOnce(roll);
    });
  },
);
