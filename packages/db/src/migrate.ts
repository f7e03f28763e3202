import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { type MigrationFile, readMigrationFiles } from "./migration-files.ts";
import {
  releaseMigrationLock,
  renewMigrationLock,
  tryTakeMigrationLock,
} from "./migration-lock.ts";

export type MigrationLog = {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
};

export type MigrateOptions = {
  /** Who takes the lock: shown to operators, unique per process. */
  holder: string;
  /** Lease of the migration lock, renewed every third of it (ms). */
  leaseMs: number;
  /** `lock_timeout` of every migration statement (ms). */
  lockTimeoutMs: number;
  /** `statement_timeout` of every migration statement (ms). */
  statementTimeoutMs: number;
  /** Attempts of one file when its statements time out waiting for a lock. */
  lockRetries: number;
  log: MigrationLog;
  files?: MigrationFile[];
};

export type AppliedMigration = { version: number; name: string; checksum: string; appliedAt: Date };

export type MigrationState = {
  applied: AppliedMigration[];
  pending: MigrationFile[];
  /** Applied in the database but unknown to this binary: the schema is ahead of the code. */
  ahead: AppliedMigration[];
  /** Applied files whose bytes changed since: a start must stop. */
  edited: MigrationFile[];
};

/** An applied migration file was edited afterwards. */
export class EditedMigrationError extends Error {
  constructor(readonly files: string[]) {
    super(
      `applied migration ${files.join(", ")} was edited after it ran; restore the file as it was and add a new migration instead`,
    );
  }
}

/** This node's lease on the migration lock expired and another node holds it. */
export class LostMigrationLockError extends Error {}

const BOOTSTRAP = `
CREATE TABLE IF NOT EXISTS sluice_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL
);
CREATE TABLE IF NOT EXISTS sluice_migration_lock (
  id integer PRIMARY KEY,
  holder text NOT NULL,
  taken_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);`;

/**
 * Creates the two tables the runner itself needs. Safe to race: concurrent
 * `CREATE TABLE IF NOT EXISTS` can fail on the catalog's unique index, so
 * that failure is retried.
 */
export async function ensureMigrationTables(pool: pg.Pool): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await pool.query(BOOTSTRAP);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= 5 || (code !== "23505" && code !== "42P07")) throw error;
      await sleep(50 * (attempt + 1));
    }
  }
}

/** Compares the files with what the database has applied. */
export async function readMigrationState(
  pool: pg.Pool,
  files: MigrationFile[] = readMigrationFiles(),
): Promise<MigrationState> {
  const result = await pool.query(
    `SELECT version, name, checksum, applied_at AS "appliedAt" FROM sluice_migrations ORDER BY version`,
  );
  const applied = result.rows as AppliedMigration[];
  const byVersion = new Map(applied.map((m) => [m.version, m]));
  const known = new Set(files.map((f) => f.version));
  return {
    applied,
    pending: files.filter((f) => !byVersion.has(f.version)),
    ahead: applied.filter((m) => !known.has(m.version)),
    edited: files.filter((f) => {
      const row = byVersion.get(f.version);
      return row !== undefined && row.checksum !== f.checksum;
    }),
  };
}

/**
 * Applies pending migrations under the migration lock. Every node calls this
 * on start: one takes the lock and applies, the others poll with backoff and
 * return once nothing is pending. Each file runs in one transaction with
 * `lock_timeout` and `statement_timeout`; a lock timeout (SQLSTATE 55P03)
 * is retried with backoff up to `lockRetries` times. Throws
 * EditedMigrationError when an applied file changed, LostMigrationLockError
 * when the lease was lost mid-way, or the database error of a failed file.
 */
export async function applyMigrations(
  pool: pg.Pool,
  options: MigrateOptions,
): Promise<MigrationState> {
  const files = options.files ?? readMigrationFiles();
  await ensureMigrationTables(pool);
  let backoffMs = 50;
  for (;;) {
    const state = await readMigrationState(pool, files);
    if (state.edited.length > 0) throw new EditedMigrationError(state.edited.map((f) => f.name));
    if (state.pending.length === 0) return state;
    if (await tryTakeMigrationLock(pool, options.holder, options.leaseMs)) {
      await applyWhileHolding(pool, files, options);
      return readMigrationState(pool, files);
    }
    options.log.info({ pending: state.pending.length }, "waiting for the migration lock");
    await sleep(backoffMs);
    backoffMs = Math.min(backoffMs * 2, 2000);
  }
}

async function applyWhileHolding(pool: pg.Pool, files: MigrationFile[], options: MigrateOptions) {
  const heartbeat = setInterval(() => {
    renewMigrationLock(pool, options.holder, options.leaseMs).catch((error) =>
      options.log.warn({ err: error }, "migration lock heartbeat failed"),
    );
  }, options.leaseMs / 3);
  try {
    const { pending } = await readMigrationState(pool, files);
    for (const file of pending) await applyFile(pool, file, options);
  } finally {
    clearInterval(heartbeat);
    await releaseMigrationLock(pool, options.holder);
  }
}

async function applyFile(pool: pg.Pool, file: MigrationFile, options: MigrateOptions) {
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(`SET LOCAL lock_timeout = ${Math.floor(options.lockTimeoutMs)}`);
      await client.query(`SET LOCAL statement_timeout = ${Math.floor(options.statementTimeoutMs)}`);
      if (!(await renewMigrationLock(client, options.holder, options.leaseMs))) {
        throw new LostMigrationLockError(`lost the migration lock before ${file.name}`);
      }
      const done = await client.query("SELECT 1 FROM sluice_migrations WHERE version = $1", [
        file.version,
      ]);
      if (done.rowCount === 0) {
        await client.query(file.sql);
        await client.query(
          "INSERT INTO sluice_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
          [file.version, file.name, file.checksum, Date.now() - started],
        );
      }
      await client.query("COMMIT");
      options.log.info({ migration: file.name, ms: Date.now() - started }, "migration applied");
      return;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      const code = (error as { code?: string }).code;
      if (code === "55P03" && attempt < options.lockRetries) {
        options.log.warn(
          { migration: file.name, attempt },
          "migration timed out waiting for a lock; retrying",
        );
        await sleep(Math.min(100 * 2 ** attempt, 5000));
        continue;
      }
      throw error;
    } finally {
      client.release();
    }
  }
}
