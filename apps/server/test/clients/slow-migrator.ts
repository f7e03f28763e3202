// A migrating node for the SIGKILL test: applies the real migrations plus a
// slow one, holding the lock with a short lease, until it is killed.
import { createHash } from "node:crypto";
import { applyMigrations, readMigrationFiles } from "@sluice/db";
import pg from "pg";

export const SLOW_SQL = "CREATE TABLE IF NOT EXISTS slow_marker (a int);\nSELECT pg_sleep(3);\n";

export function slowFiles() {
  const slow = {
    version: 9999,
    name: "9999_slow.sql",
    sql: SLOW_SQL,
    noTransaction: false,
    checksum: createHash("sha256").update(SLOW_SQL).digest("hex"),
  };
  return [...readMigrationFiles(), slow];
}

if (process.argv[2]) {
  const pool = new pg.Pool({ connectionString: process.argv[2] });
  const log = { info: () => {}, warn: () => {} };
  await applyMigrations(pool, {
    holder: "doomed-node",
    leaseMs: 1_000,
    lockTimeoutMs: 5_000,
    statementTimeoutMs: 60_000,
    lockRetries: 3,
    log,
    files: slowFiles(),
  });
  await pool.end();
}
