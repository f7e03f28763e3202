import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import * as schema from "./schema.ts";

export type Orm = NodePgDatabase<typeof schema>;

/** The connection pool and the drizzle handle over it; built once at start. */
export type Database = { pool: pg.Pool; orm: Orm; close(): Promise<void> };

export type DatabaseOptions = {
  /** Pool size (connections). */
  max: number;
  applicationName: string;
  /** How long to wait for a connection before failing a query (ms). */
  connectionTimeoutMs: number;
};

/**
 * Opens a pg pool (lazily: no connection is made until the first query) and
 * a drizzle handle on it. Connection errors, on idle or checked-out
 * clients, are reported through `onError` rather than crashing the process.
 */
export function createDatabase(
  url: string,
  options: DatabaseOptions,
  onError: (error: Error) => void,
): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max,
    application_name: options.applicationName,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    idleTimeoutMillis: 30_000,
  });
  pool.on("error", onError);
  // A client checked out of the pool emits "error" when its socket dies;
  // without a listener that would crash the process (the query fails anyway).
  pool.on("connect", (client) => client.on("error", onError));
  return { pool, orm: drizzle(pool, { schema }), close: () => pool.end() };
}

/**
 * What a raw query function takes: the pool (each query on whichever
 * connection is free) or one checked-out client (a transaction's, from
 * `withTransaction`). Drizzle queries take an `Orm` instead.
 */
export type Queryable = pg.Pool | pg.PoolClient;

/** One open transaction: a raw client and a drizzle handle on that same connection. */
export type Transaction = { client: pg.PoolClient; orm: Orm };

export type TransactionOptions = {
  /**
   * False: COMMIT does not wait for the WAL flush (`SET LOCAL
   * synchronous_commit = off`). Only for transactions whose loss in a
   * crash is harmless, because what they write can be derived again.
   */
  synchronousCommit?: boolean;
  /** `SET LOCAL lock_timeout`, ms: a lock not granted in time fails the statement (55P03). */
  lockTimeoutMs?: number;
  /** `SET LOCAL statement_timeout`, ms (57014 past it). */
  statementTimeoutMs?: number;
};

/**
 * Runs `work` in one transaction on one pooled client: BEGIN (with the
 * `options` set for this transaction only), COMMIT when `work` resolves,
 * ROLLBACK and rethrow when it throws. `tx.client` takes raw query
 * functions, `tx.orm` drizzle ones; the drizzle handle is built only when
 * asked for. `db` is the database or its pool. Throws `RangeError`, before
 * connecting, for a timeout that is not a non-negative number of ms.
 */
export async function withTransaction<T>(
  db: Database | pg.Pool,
  work: (tx: Transaction) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const pool = "orm" in db ? db.pool : db;
  const begin = beginStatement(options);
  const client = await pool.connect();
  try {
    await client.query(begin);
    let orm: Orm | undefined;
    const result = await work({
      client,
      get orm() {
        orm ??= drizzle(client, { schema });
        return orm;
      },
    });
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** BEGIN and the transaction's settings, sent as one simple query (one round trip). */
function beginStatement(options: TransactionOptions): string {
  let sql = "BEGIN";
  if (options.synchronousCommit === false) sql += "; SET LOCAL synchronous_commit = off";
  if (options.lockTimeoutMs !== undefined) {
    sql += `; SET LOCAL lock_timeout = ${wholeMs(options.lockTimeoutMs)}`;
  }
  if (options.statementTimeoutMs !== undefined) {
    sql += `; SET LOCAL statement_timeout = ${wholeMs(options.statementTimeoutMs)}`;
  }
  return sql;
}

function wholeMs(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`not a timeout in ms: ${ms}`);
  return Math.floor(ms);
}

/**
 * Runs `SELECT 1` on a pooled connection: resolves when the database
 * answers, throws its error (or the pool's connection timeout) when not.
 * For readiness checks.
 */
export async function ping(db: Database): Promise<void> {
  await db.pool.query("SELECT 1");
}
