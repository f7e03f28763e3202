import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { applyMigrations, readMigrationFiles, readMigrationState } from "@sluice/db";
import { createTestDatabase, openTestPool, silentLog, type TestDatabase } from "@sluice/db/testing";
import type pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { slowFiles } from "./clients/slow-migrator.ts";
import { waitFor } from "./harness.ts";
import { startNode, type Version } from "./processes.ts";

const root = new URL("../../../", import.meta.url).pathname;
const current: Version = { label: "current", root };

describe("migrations across a fleet of nodes", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  const children: ChildProcess[] = [];
  beforeEach(async () => {
    db = await createTestDatabase();
    pool = openTestPool(db.url);
  });
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    await pool.end();
    await db.drop();
  });

  it("ten sluice serve processes started at once on an empty database apply each migration once and all become ready", async () => {
    const nodes = await Promise.all(
      Array.from({ length: 10 }, () =>
        startNode(current, "api", { DATABASE_URL: db.url, REDIS_URL: "" }, children),
      ),
    );
    const ports = nodes.map((n) => n.port);
    for (const port of ports)
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const applied = await pool.query(
      "SELECT version, count(*)::int AS n FROM sluice_migrations GROUP BY version ORDER BY version",
    );
    expect(applied.rows).toEqual(readMigrationFiles().map((f) => ({ version: f.version, n: 1 })));
  }, 120_000);

  it("finishes the work of a lock holder killed mid-migration once its lease expires", async () => {
    const doomed = spawn(
      process.execPath,
      ["--import", "tsx", join(root, "apps/server/test/clients/slow-migrator.ts"), db.url],
      {
        cwd: root,
        stdio: "inherit",
      },
    );
    children.push(doomed);
    await waitFor(
      async () => {
        const held = await pool
          .query(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()",
          )
          .catch(() => null);
        return (held?.rowCount ?? 0) > 0;
      },
      30_000,
      "the doomed node to start the slow migration",
    );
    doomed.kill("SIGKILL");
    const files = slowFiles();
    const state = await applyMigrations(pool, {
      holder: "survivor",
      leaseMs: 1_000,
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 60_000,
      lockRetries: 3,
      log: silentLog,
      files,
    });
    expect(state.pending).toEqual([]);
    const applied = await pool.query(
      "SELECT version, count(*)::int AS n FROM sluice_migrations GROUP BY version ORDER BY version",
    );
    expect(applied.rows).toEqual(files.map((f) => ({ version: f.version, n: 1 })));
    expect((await readMigrationState(pool, files)).pending).toEqual([]);
    const marker = await pool.query("SELECT to_regclass('slow_marker') IS NOT NULL AS exists");
    expect(marker.rows[0].exists).toBe(true);
  }, 60_000);
});
