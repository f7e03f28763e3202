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
 * Runs `work` in a transaction on one pooled client: COMMIT when it
 * resolves, ROLLBACK and rethrow when it throws.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
