import { createHash } from "node:crypto";
import type pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureEventPartitions } from "../src/event-partitions.ts";
import {
  applyMigrations,
  EditedMigrationError,
  type MigrateOptions,
  readMigrationState,
  waitForSchema,
} from "../src/migrate.ts";
import {
  type MigrationFile,
  NO_TRANSACTION_MARKER,
  readMigrationFiles,
} from "../src/migration-files.ts";
import { readMigrationLock } from "../src/migration-lock.ts";
import { createTestDatabase, openTestPool, silentLog, type TestDatabase } from "./test-database.ts";

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
    const p = openTestPool(db.url, 2);
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
      "SELECT version, count(*)::int AS n FROM sluice_migrations GROUP BY version ORDER BY version",
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
    const pools = Array.from({ length: 5 }, () => openTestPool(db.url, 1));
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

describe("safe execution", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  const base = () => readMigrationFiles();
  const file = (version: number, name: string, sql: string): MigrationFile => ({
    version,
    name,
    sql,
    checksum: createHash("sha256").update(sql).digest("hex"),
    noTransaction: sql.startsWith(NO_TRANSACTION_MARKER),
  });
  beforeEach(async () => {
    db = await createTestDatabase();
    pool = openTestPool(db.url, 6);
    await applyMigrations(pool, options("setup"));
  });
  afterEach(async () => {
    await pool.end();
    await db.drop();
  });

  it("runs a no-transaction file statement by statement and rebuilds an index an earlier attempt left invalid", async () => {
    await pool.query("CREATE TABLE widgets (a int); INSERT INTO widgets VALUES (1), (1)");
    const concurrent = file(
      9001,
      "9001_widgets_a.sql",
      `${NO_TRANSACTION_MARKER}\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS widgets_a ON widgets (a);\nSELECT 1;\n`,
    );
    const files = [...base(), concurrent];
    await expect(applyMigrations(pool, { ...options("first"), files })).rejects.toThrow(
      /could not create unique index/,
    );
    const invalid = await pool.query(
      "SELECT indisvalid FROM pg_index WHERE indexrelid = 'widgets_a'::regclass",
    );
    expect(invalid.rows).toEqual([{ indisvalid: false }]);
    await pool.query("DELETE FROM widgets WHERE ctid NOT IN (SELECT min(ctid) FROM widgets)");
    await applyMigrations(pool, { ...options("second"), files });
    const valid = await pool.query(
      "SELECT indisvalid FROM pg_index WHERE indexrelid = 'widgets_a'::regclass",
    );
    expect(valid.rows).toEqual([{ indisvalid: true }]);
    expect((await readMigrationState(pool, files)).pending).toEqual([]);
  });

  it("retries a migration that times out behind a long transaction, while inserts keep working", async () => {
    const holder = await pool.connect();
    await holder.query("BEGIN; SELECT count(*) FROM leases");
    const alter = file(
      9002,
      "9002_leases_note.sql",
      "ALTER TABLE leases ADD COLUMN IF NOT EXISTS note text;\n",
    );
    const migrating = applyMigrations(pool, {
      ...options("migrator"),
      lockTimeoutMs: 100,
      lockRetries: 20,
      files: [...base(), alter],
    });
    let inserted = 0;
    let slowest = 0;
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const started = Date.now();
      await pool.query("INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'x', now())", [
        `l${inserted}`,
      ]);
      slowest = Math.max(slowest, Date.now() - started);
      inserted++;
      await new Promise((r) => setTimeout(r, 20));
    }
    await holder.query("COMMIT");
    holder.release();
    const state = await migrating;
    expect(state.pending).toEqual([]);
    expect(inserted).toBeGreaterThan(20);
    expect(slowest).toBeLessThan(1000);
    const columns = await pool.query(
      "SELECT 1 FROM information_schema.columns WHERE table_name = 'leases' AND column_name = 'note'",
    );
    expect(columns.rowCount).toBe(1);
  });

  it("alters two tables that live transactions take in the other order without deadlocking with them", async () => {
    // Release 0.1.0's worker: lock an event row, then update its issue, in
    // one transaction; migration 0006 alters issues, then events.
    await pool.query(`CREATE TABLE rows_a (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
      CREATE TABLE rows_b (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
      INSERT INTO rows_a SELECT g FROM generate_series(1, 8) g;
      INSERT INTO rows_b SELECT g FROM generate_series(1, 8) g;`);
    const traffic = openTestPool(db.url, 4);
    let stop = false;
    let transactions = 0;
    const workers = Array.from({ length: 4 }, async (_, w) => {
      while (!stop) {
        const client = await traffic.connect();
        try {
          await client.query("BEGIN");
          await client.query("SELECT n FROM rows_b WHERE id = $1 FOR UPDATE", [w + 1]);
          await new Promise((r) => setTimeout(r, 40));
          await client.query("UPDATE rows_a SET n = n + 1 WHERE id = $1", [w + 1]);
          await client.query("UPDATE rows_b SET n = n + 1 WHERE id = $1", [w + 1]);
          await client.query("COMMIT");
          transactions++;
        } finally {
          client.release();
        }
      }
    });
    const warnings: string[] = [];
    const alter = file(
      9004,
      "9004_two_tables.sql",
      "ALTER TABLE rows_a ADD COLUMN IF NOT EXISTS note text;\nALTER TABLE rows_b ADD COLUMN IF NOT EXISTS note text;\n",
    );
    try {
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await applyMigrations(pool, {
        ...options("migrator"),
        lockTimeoutMs: 300,
        lockRetries: 4,
        files: [...base(), alter],
        log: { info() {}, warn: (_fields, message) => warnings.push(message) },
      });
      expect(Date.now() - started).toBeLessThan(5_000);
      const before = transactions;
      await new Promise((r) => setTimeout(r, 300));
      expect(transactions).toBeGreaterThan(before);
    } finally {
      stop = true;
      await Promise.all(workers);
      await traffic.end();
    }
    expect(warnings.length).toBeLessThan(4);
    const columns = await pool.query(
      "SELECT table_name FROM information_schema.columns WHERE column_name = 'note' AND table_name LIKE 'rows_%' ORDER BY 1",
    );
    expect(columns.rows).toEqual([{ table_name: "rows_a" }, { table_name: "rows_b" }]);
  });

  it("makes --no-migrate nodes wait for the schema, and fail clearly when it never comes", async () => {
    const extra = file(9003, "9003_later.sql", "CREATE TABLE IF NOT EXISTS later (a int);\n");
    const files = [...base(), extra];
    const wait = { timeoutMs: 300, pollMs: 50, log: silentLog, files };
    await expect(waitForSchema(pool, wait)).rejects.toThrow(
      /lacks 1 migration\(s\) this release needs \(9003_later\.sql\)/,
    );
    const waiting = waitForSchema(pool, { ...wait, timeoutMs: 10_000 });
    await applyMigrations(pool, { ...options("job"), files });
    expect((await waiting).pending).toEqual([]);
  });
});

describe("migration 0015", () => {
  it("gives the projects that exist at 0015 a 7-day grouping transition, and those created after none", async () => {
    const db = await createTestDatabase();
    const p = openTestPool(db.url, 2);
    try {
      const files = readMigrationFiles();
      const before = files.filter((f) => f.version < 15);
      await applyMigrations(p, { ...options("a"), files: before });
      await p.query("INSERT INTO organizations (id, slug, name) VALUES (1, 'o', 'o')");
      await p.query("INSERT INTO projects (organization_id, slug, name) VALUES (1, 'old', 'old')");
      await applyMigrations(p, { ...options("a"), files });
      await p.query("INSERT INTO projects (organization_id, slug, name) VALUES (1, 'new', 'new')");
      const rows = await p.query(
        `SELECT slug, round(extract(epoch FROM secondary_grouping_expiry - now()) / 3600) AS hours
         FROM projects ORDER BY slug`,
      );
      expect(rows.rows).toEqual([
        { slug: "new", hours: null },
        { slug: "old", hours: "168" },
      ]);
    } finally {
      await p.end();
      await db.drop();
    }
  });
});
