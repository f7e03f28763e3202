import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { withTransaction } from "./database.ts";
import { type MigrationFile, readMigrationFiles } from "./migration-files.ts";
import {
  checkGate,
  forgetSchemaFloor,
  type GateRefusal,
  gatedChanges,
  type MigrationGate,
  recordSchemaFloor,
  requiredRelease,
} from "./migration-gate.ts";
import {
  releaseMigrationLock,
  renewMigrationLock,
  tryTakeMigrationLock,
} from "./migration-lock.ts";
import { type TableLock, tableLocksOf, takeTableLocks } from "./migration-table-locks.ts";
import { splitStatements } from "./split-statements.ts";
import { loadSqlParser, parseSql } from "./sql-parser.ts";

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
  /**
   * The version gate: a file that removes or narrows something is applied
   * only while no live node still reads it, else left pending (and
   * reported in `refused`) while the files after it are applied. Without a
   * gate every file is applied in order (tests of the runner alone).
   */
  gate?: MigrationGate;
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
 * What a concurrent `CREATE TABLE IF NOT EXISTS` can fail with when another
 * session creates the same table at the same moment: a unique violation in
 * the catalog (23505), the table (42P07) or its row type (42710) existing.
 */
export const CONCURRENT_CREATE_CODES = new Set(["23505", "42P07", "42710"]);

/**
 * Creates the two tables the runner itself needs. Safe to race: the
 * failures of a concurrent create are retried, and the retry finds the
 * tables there.
 */
export async function ensureMigrationTables(pool: pg.Pool): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await pool.query(BOOTSTRAP);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= 5 || !CONCURRENT_CREATE_CODES.has(code ?? "")) throw error;
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
 * return once nothing is pending. Each file runs in one transaction (or
 * statement by statement when marked `-- sluice:no-transaction`) with
 * `lock_timeout` and `statement_timeout`; a transactional file first takes
 * the table locks its statements need, never waiting for one while holding
 * another (`takeTableLocks`), so it cannot deadlock with live traffic; a
 * lock timeout (SQLSTATE 55P03) is retried with backoff up to
 * `lockRetries` times. Throws
 * EditedMigrationError when an applied file changed, LostMigrationLockError
 * when the lease was lost mid-way, or the database error of a failed file.
 */
export async function applyMigrations(
  pool: pg.Pool,
  options: MigrateOptions,
): Promise<MigrationState & { refused: GateRefusal[] }> {
  const files = options.files ?? readMigrationFiles();
  await ensureMigrationTables(pool);
  let backoffMs = 50;
  for (let attempt = 0; ; attempt++) {
    const state = await readMigrationState(pool, files);
    if (state.edited.length > 0) throw new EditedMigrationError(state.edited.map((f) => f.name));
    if (state.pending.length === 0) return { ...state, refused: [] };
    await loadSqlParser(); // the gate and CONCURRENTLY handling parse SQL
    // With a gate, a waiting node needs only the additive files: a gated
    // one may stay pending for as long as an old node lives.
    if (attempt > 0 && options.gate && state.pending.every((f) => gatedChanges(f).length > 0))
      return { ...state, refused: [] };
    if (await tryTakeMigrationLock(pool, options.holder, options.leaseMs)) {
      const refused = await applyWhileHolding(pool, files, options);
      return { ...(await readMigrationState(pool, files)), refused };
    }
    options.log.info({ pending: state.pending.length }, "waiting for the migration lock");
    await sleep(backoffMs);
    backoffMs = Math.min(backoffMs * 2, 2000);
  }
}

async function applyWhileHolding(
  pool: pg.Pool,
  files: MigrationFile[],
  options: MigrateOptions,
): Promise<GateRefusal[]> {
  const heartbeat = setInterval(() => {
    renewMigrationLock(pool, options.holder, options.leaseMs).catch((error) =>
      options.log.warn({ err: error }, "migration lock heartbeat failed"),
    );
  }, options.leaseMs / 3);
  const refused: GateRefusal[] = [];
  try {
    const { pending } = await readMigrationState(pool, files);
    for (const file of pending) {
      const refusal = options.gate ? await passGate(pool, file, options.gate) : null;
      if (refusal) {
        options.log.warn(
          {
            migration: file.name,
            blockers: refusal.blockers.map((n) => ({ id: n.id, release: n.release, host: n.host })),
          },
          refusal.message,
        );
        refused.push(refusal);
        continue;
      }
      await applyFile(pool, file, options);
    }
    return refused;
  } finally {
    clearInterval(heartbeat);
    await releaseMigrationLock(pool, options.holder);
  }
}

/**
 * The gate for one file, under the migration lock: null to apply it. The
 * floor is recorded before the second look at the fleet, so that a node of
 * an older release starting in between either is seen or refuses to start.
 */
async function passGate(
  pool: pg.Pool,
  file: MigrationFile,
  gate: MigrationGate,
): Promise<GateRefusal | null> {
  const first = await checkGate(pool, file, gate);
  if (first) return first;
  const changes = gatedChanges(file);
  if (changes.length === 0) return null;
  const oldest = requiredRelease(changes, gate);
  await recordSchemaFloor(
    pool,
    file.version,
    oldest,
    `${file.name} removes what older releases read`,
  );
  const second = await checkGate(pool, file, gate);
  if (second) await forgetSchemaFloor(pool, file.version);
  return second;
}

async function applyFile(pool: pg.Pool, file: MigrationFile, options: MigrateOptions) {
  const started = Date.now();
  if (file.noTransaction) await applyOutsideTransaction(pool, file, options);
  else {
    // Reordered by each attempt: the table that was busy is waited on first next time.
    const locks = await tableLocksOf(file.sql);
    await retryOnLockTimeout(options, file.name, () =>
      applyInTransaction(pool, file, locks, options),
    );
  }
  options.log.info({ migration: file.name, ms: Date.now() - started }, "migration applied");
}

async function applyInTransaction(
  pool: pg.Pool,
  file: MigrationFile,
  locks: TableLock[],
  options: MigrateOptions,
) {
  const started = Date.now();
  const timeouts = {
    lockTimeoutMs: options.lockTimeoutMs,
    statementTimeoutMs: options.statementTimeoutMs,
  };
  await withTransaction(
    pool,
    async ({ client }) => {
      await holdLock(client, file, options);
      const done = await client.query("SELECT 1 FROM sluice_migrations WHERE version = $1", [
        file.version,
      ]);
      if (done.rowCount === 0) {
        await takeTableLocks(client, locks);
        await client.query(file.sql);
        await recordApplied(client, file, started);
      }
    },
    timeouts,
  );
}

/**
 * A `-- sluice:no-transaction` file: each statement on its own, so that
 * `CREATE INDEX CONCURRENTLY` can run. Statements must be safe to run again
 * (the linter requires IF [NOT] EXISTS): when a node dies halfway, the next
 * one runs the whole file again, and an index an earlier attempt left
 * invalid is dropped and built anew.
 */
async function applyOutsideTransaction(
  pool: pg.Pool,
  file: MigrationFile,
  options: MigrateOptions,
) {
  const started = Date.now();
  const statements = await splitStatements(file.sql);
  const client = await pool.connect();
  try {
    await setSessionTimeouts(client, options);
    for (const statement of statements) {
      await holdLock(client, file, options);
      await dropInvalidIndex(client, statement, options);
      await retryOnLockTimeout(options, file.name, () => client.query(statement));
    }
    await holdLock(client, file, options);
    await recordApplied(client, file, started);
  } finally {
    await client.query("RESET lock_timeout; RESET statement_timeout").catch(() => {});
    client.release();
  }
}

async function setSessionTimeouts(client: pg.PoolClient, options: MigrateOptions) {
  await client.query(`SET SESSION lock_timeout = ${Math.floor(options.lockTimeoutMs)}`);
  await client.query(`SET SESSION statement_timeout = ${Math.floor(options.statementTimeoutMs)}`);
}

async function holdLock(client: pg.PoolClient, file: MigrationFile, options: MigrateOptions) {
  if (!(await renewMigrationLock(client, options.holder, options.leaseMs))) {
    throw new LostMigrationLockError(`lost the migration lock while applying ${file.name}`);
  }
}

async function recordApplied(client: pg.PoolClient, file: MigrationFile, started: number) {
  await client.query(
    "INSERT INTO sluice_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
    [file.version, file.name, file.checksum, Date.now() - started],
  );
}

/**
 * Retries `work` when it fails on `lock_timeout` (SQLSTATE 55P03) or is
 * chosen as a deadlock's victim (40P01: its ALTERs met live transactions
 * that take the same tables in the other order), with exponential backoff
 * from 200 ms up to 5 s, at most `lockRetries` attempts: a migration never
 * queues behind a long transaction while blocking ingest. Both errors roll
 * the file's transaction (or the one statement) back, so a retry is safe.
 */
async function retryOnLockTimeout<T>(
  options: MigrateOptions,
  what: string,
  work: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if ((code !== "55P03" && code !== "40P01") || attempt >= options.lockRetries) throw error;
      options.log.warn(
        { migration: what, attempt, code },
        code === "40P01"
          ? "migration was a deadlock's victim; retrying"
          : "migration timed out waiting for a lock; retrying",
      );
      await sleep(Math.min(100 * 2 ** attempt, 5000));
    }
  }
}

/** Drops the index a `CREATE INDEX CONCURRENTLY` will build if an earlier attempt left it invalid. */
async function dropInvalidIndex(client: pg.PoolClient, statement: string, options: MigrateOptions) {
  const name = concurrentIndexName(statement);
  if (!name) return;
  const found = await client.query(
    `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relname = $1 AND pg_table_is_visible(c.oid)`,
    [name],
  );
  if (found.rows[0]?.indisvalid === false) {
    options.log.warn({ index: name }, "dropping an invalid index left by an earlier attempt");
    await client.query(`DROP INDEX CONCURRENTLY IF EXISTS "${name.replaceAll('"', '""')}"`);
  }
}

function concurrentIndexName(statement: string): string | null {
  if (!/^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY/i.test(statement)) return null;
  const stmts = parseSql(statement).stmts ?? [];
  const index = (
    stmts[0]?.stmt as { IndexStmt?: { idxname?: string; concurrent?: boolean } } | undefined
  )?.IndexStmt;
  return index?.concurrent && index.idxname ? index.idxname : null;
}

export type SchemaWaitOptions = {
  timeoutMs: number;
  pollMs: number;
  log: MigrationLog;
  files?: MigrationFile[];
};

/** The schema never got what this release needs within the wait. */
export class SchemaNotReadyError extends Error {}

/**
 * For nodes started with `--no-migrate` (a Job migrates the fleet): waits
 * until every migration this binary knows is applied, polling every
 * `pollMs`, and throws SchemaNotReadyError naming the missing files after
 * `timeoutMs`, or EditedMigrationError.
 */
export async function waitForSchema(
  pool: pg.Pool,
  options: SchemaWaitOptions,
): Promise<MigrationState> {
  const files = options.files ?? readMigrationFiles();
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const state = await ensureMigrationTables(pool).then(() => readMigrationState(pool, files));
    if (state.edited.length > 0) throw new EditedMigrationError(state.edited.map((f) => f.name));
    if (state.pending.length > 0) await loadSqlParser(); // gatedChanges parses SQL
    // A file that removes or narrows something is not what this code needs (the version gate).
    if (state.pending.every((f) => gatedChanges(f).length > 0)) return state;
    if (Date.now() >= deadline) {
      throw new SchemaNotReadyError(
        `the database lacks ${state.pending.length} migration(s) this release needs (${state.pending.map((f) => f.name).join(", ")}); run "sluice migrate apply" or start a node without --no-migrate`,
      );
    }
    options.log.info(
      { pending: state.pending.map((f) => f.name) },
      "waiting for migrations (--no-migrate)",
    );
    await sleep(options.pollMs);
  }
}
