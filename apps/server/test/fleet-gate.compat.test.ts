import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import {
  applyMigrations,
  type MigrationGate,
  readMigrationFiles,
  readMigrationState,
} from "@sluice/db";
import { createTestDatabase, openTestPool, silentLog, type TestDatabase } from "@sluice/db/testing";
import { readReleases } from "@sluice/migration-lint";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInfo } from "../src/build-info.ts";
import { prepareWorktree, repoRoot } from "./compat-targets.ts";
import { waitFor } from "./harness.ts";
import { runSluice, startNode, stopNode, type Version } from "./processes.ts";

const current: Version = { label: "current", root: repoRoot };
/** A test-only migrations directory: a table, its drop (gated), an additive file after it. */
const gatedDir = join(repoRoot, "apps/server/test/fixtures/gated-migrations");
const FAST = {
  SLUICE_NODE_HEARTBEAT_MS: "200",
  SLUICE_NODE_AGE_OUT_MS: "2000",
  SLUICE_UNREGISTERED_NODE_AGE_OUT_MS: "2000",
};

const tableExists = async (pool: pg.Pool, name: string) =>
  (await pool.query("SELECT to_regclass($1) IS NOT NULL AS p", [name])).rows[0].p as boolean;

describe("the version gate", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let oldest: Version;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    const first = readReleases(join(repoRoot, "releases.json"))[0];
    if (!first) throw new Error("releases.json has no release");
    oldest = { label: `release ${first.version}`, root: prepareWorktree(first.commit) };
    db = await createTestDatabase();
    pool = openTestPool(db.url);
  }, 600_000);
  afterAll(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    await pool.end();
    await db.drop();
  });

  it("holds a drop while a live 0.1.0 node (a real process) still reads it, applies what comes after, and applies the drop once the node stops", async () => {
    const env = { DATABASE_URL: db.url, REDIS_URL: "", ...FAST };
    await runSluice(current, env, "migrate", "apply");
    const old = await startNode(oldest, "all", env, children);
    // A current node, whose heartbeat records the old node's connections.
    const watcher = await startNode(current, "api", env, children);
    // And a registered node of a release that still reads the table.
    await pool.query(
      `INSERT INTO sluice_nodes (id, host, release, schema_version, ready)
       VALUES ('old-registered:1:x', 'host-b', '0.1.9', 9, true)`,
    );
    const files = [...readMigrationFiles(), ...readMigrationFiles(gatedDir)];
    const gate: MigrationGate = {
      deprecations: [{ table: "legacy_widgets", stoppedIn: "0.2.0" }],
      release: buildInfo().release,
      ageOutMs: 2_000,
      unregisteredAgeOutMs: 2_000,
    };
    const migrate = () =>
      applyMigrations(pool, {
        holder: "gate-test",
        leaseMs: 10_000,
        lockTimeoutMs: 2_000,
        statementTimeoutMs: 60_000,
        lockRetries: 3,
        log: silentLog,
        files,
        gate,
      });

    const held = await migrate();
    expect(held.refused.map((r) => r.file)).toEqual(["9002_drop_legacy_widgets.sql"]);
    const message = held.refused[0]?.message ?? "";
    expect(message).toContain("drop legacy_widgets");
    expect(message).toContain("older than release 0.2.0");
    expect(message).toContain("old-registered:1:x (release 0.1.9, host host-b)");
    expect(message).toMatch(/unregistered node\(s\) at 127\.0\.0\.1 \(release 0\.3\.0 or older/);
    expect(await tableExists(pool, "legacy_widgets")).toBe(true);
    expect(await tableExists(pool, "after_the_drop")).toBe(true);
    expect(held.pending.map((f) => f.name)).toEqual(["9002_drop_legacy_widgets.sql"]);
    expect((await pool.query("SELECT * FROM sluice_schema_floor")).rowCount).toBe(0);
    // The old node keeps serving meanwhile.
    expect((await fetch(`http://127.0.0.1:${old.port}/readyz`)).status).toBe(200);

    // The registered one goes; the 0.1.0 process still blocks.
    await pool.query("DELETE FROM sluice_nodes WHERE id = 'old-registered:1:x'");
    const stillHeld = await migrate();
    expect(stillHeld.refused).toHaveLength(1);
    expect(stillHeld.refused[0]?.message).not.toContain("old-registered");

    await stopNode(old);
    const stoppedAt = Date.now();
    let applied = await migrate();
    while (applied.refused.length > 0 && Date.now() - stoppedAt < 20_000) {
      await new Promise((r) => setTimeout(r, 250));
      applied = await migrate();
    }
    expect(applied.refused).toEqual([]);
    expect(applied.pending).toEqual([]);
    expect(await tableExists(pool, "legacy_widgets")).toBe(false);
    const floor = await pool.query(
      "SELECT migration::int, oldest_release FROM sluice_schema_floor",
    );
    expect(floor.rows).toEqual([{ migration: 9002, oldest_release: "0.2.0" }]);
    await stopNode(watcher);
    expect((await readMigrationState(pool, files)).pending).toEqual([]);
  }, 180_000);

  it("a node older than the oldest release the schema supports refuses to start, saying so", async () => {
    await pool.query(
      "INSERT INTO sluice_schema_floor (migration, oldest_release, reason) VALUES (9999, '99.0.0', 'a test floor')",
    );
    const env = { DATABASE_URL: db.url, REDIS_URL: "" };
    const start = startNode(current, "api", env, children);
    await expect(start).rejects.toThrow(
      new RegExp(
        `this node runs release ${buildInfo().release.replaceAll(".", "\\.")}, but the schema supports release 99\\.0\\.0 and later only \\(migration 9999: a test floor\\)`,
      ),
    );
    await waitFor(async () => children.every((c) => c.exitCode !== null), 10_000, "exit");
    expect(children.at(-1)?.exitCode).toBe(1);
  }, 60_000);
});
