import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureEventPartitions } from "../src/event-partitions.ts";
import {
  applyMigrations,
  EditedMigrationError,
  type MigrateOptions,
  readMigrationState,
} from "../src/migrate.ts";
import { readMigrationFiles } from "../src/migration-files.ts";
import { readMigrationLock } from "../src/migration-lock.ts";
import { createTestDatabase, silentLog, type TestDatabase } from "./test-database.ts";

const options = (holder: string): MigrateOptions => ({
  holder,
  leaseMs: 2_000,
  lockTimeoutMs: 2_000,
  statementTimeoutMs: 60_000,
  lockRetries: 3,
  log: silentLog,
});

describe("applyMigrations", () => {
  let db: TestDatabase;
  const pools: pg.Pool[] = [];
  const pool = () => {
    const p = new pg.Pool({ connectionString: db.url, max: 2 });
    pools.push(p);
    return p;
  };
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end()));
    await db.drop();
  });

  it("applies each migration once when ten nodes start together", async () => {
    const states = await Promise.all(
      Array.from({ length: 10 }, (_, i) => applyMigrations(pool(), options(`node-${i}`))),
    );
    const files = readMigrationFiles();
    for (const state of states) expect(state.pending).toEqual([]);
    const applied = await pool().query(
      "SELECT version, count(*)::int AS n FROM sluice_migrations GROUP BY version",
    );
    expect(applied.rows).toEqual(files.map((f) => ({ version: f.version, n: 1 })));
    expect(await readMigrationLock(pool())).toBeNull();
  });

  it("takes over a lock whose holder stopped renewing it", async () => {
    const p = pool();
    await applyMigrations(p, { ...options("first"), files: [] });
    await p.query(
      `INSERT INTO sluice_migration_lock VALUES (1, 'crashed-node', now() - interval '1 minute', now() - interval '1 minute', now() + interval '1 second')`,
    );
    const started = Date.now();
    const state = await applyMigrations(p, options("survivor"));
    expect(state.pending).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
  });

  it("stops with the file's name when an applied migration was edited", async () => {
    const p = pool();
    const files = readMigrationFiles();
    await applyMigrations(p, options("a"));
    const edited = files.map((f, i) => (i === 0 ? { ...f, checksum: "0".repeat(64) } : f));
    await expect(applyMigrations(p, { ...options("b"), files: edited })).rejects.toThrow(
      EditedMigrationError,
    );
    await expect(applyMigrations(p, { ...options("b"), files: edited })).rejects.toThrow(
      /0001_init\.sql was edited/,
    );
  });

  it("starts normally when the database is ahead of this release", async () => {
    const p = pool();
    await applyMigrations(p, options("new-release"));
    await p.query(
      "INSERT INTO sluice_migrations (version, name, checksum, duration_ms) VALUES (9999, '9999_future.sql', 'x', 1)",
    );
    const state = await applyMigrations(p, options("old-release"));
    expect(state.ahead.map((m) => m.name)).toEqual(["9999_future.sql"]);
    expect((await readMigrationState(p)).pending).toEqual([]);
  });
});

describe("ensureEventPartitions", () => {
  it("creates each day once when several nodes start together", async () => {
    const db = await createTestDatabase();
    const pools = Array.from(
      { length: 5 },
      () => new pg.Pool({ connectionString: db.url, max: 1 }),
    );
    try {
      await applyMigrations(pools[0] as pg.Pool, options("setup"));
      const now = new Date("2026-03-10T12:00:00Z");
      await Promise.all(pools.map((p) => ensureEventPartitions(p, now, 1, 2)));
      const names = await (pools[0] as pg.Pool).query(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'events_p202603%' ORDER BY relname",
      );
      expect(names.rows.map((r) => r.relname)).toEqual([
        "events_p20260309",
        "events_p20260310",
        "events_p20260311",
        "events_p20260312",
      ]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      await db.drop();
    }
  });
});
