import { randomBytes } from "node:crypto";
import pg from "pg";
import { applyMigrations, type MigrateOptions } from "../src/migrate.ts";

/** The machine's Postgres, as CI starts it (trust auth, user postgres). */
export const POSTGRES_ADMIN_URL =
  process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export type TestDatabase = { url: string; name: string; drop(): Promise<void> };

/** A fresh, empty database on the test server; `drop` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `sluice_test_${randomBytes(5).toString("hex")}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A pool on a test database. Dropping the database (`WITH (FORCE)`) ends
 * its idle connections; the listener keeps that from becoming an uncaught
 * error in the test process.
 */
export function openTestPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on("error", () => {});
  return pool;
}

/** A migration log that keeps quiet. */
export const silentLog = { info() {}, warn() {} };

/** Migration options for tests: a short lease and quiet logs. */
export function testMigrateOptions(holder: string): MigrateOptions {
  return {
    holder,
    leaseMs: 10_000,
    lockTimeoutMs: 5_000,
    statementTimeoutMs: 60_000,
    lockRetries: 3,
    log: silentLog,
  };
}

/** Applies the current migrations to a test database. */
export async function migrateTestDatabase(url: string): Promise<void> {
  const pool = openTestPool(url);
  try {
    await applyMigrations(pool, testMigrateOptions("test"));
  } finally {
    await pool.end();
  }
}
