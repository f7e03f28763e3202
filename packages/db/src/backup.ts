import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";

/**
 * A logical snapshot of Sluice's tables, by `COPY`, for `sluice backup`
 * (apps/server/src/backup/). Not `pg_dump`: the embedded Postgres is 18
 * and ships no client tools, while Debian's `postgresql-client` (15)
 * refuses to dump a newer server; COPY's text format reads and writes the
 * same on every version, so one format serves the embedded and an external
 * Postgres, and a backup of one restores into the other.
 */

/** One table's data file in a backup. */
export type TableDump = {
  table: string;
  /** The columns, in file order (a newer schema's extra columns take their defaults on restore). */
  columns: string[];
  rows: number;
  file: string;
  bytes: number;
  sha256: string;
};

/** A blob the snapshot refers to. */
export type BlobReference = { blobKey: string; sha1: string };

export type DatabaseSnapshot = {
  tables: TableDump[];
  /** Migrations applied at the snapshot: `{version, name, checksum}`. */
  migrations: { version: number; name: string; checksum: string }[];
  serverVersion: string;
  /** The `events` partitions that existed (names, `events_pYYYYMMDD`). */
  partitions: string[];
  /** Every distinct blob key the snapshot's rows refer to. */
  blobs: BlobReference[];
  /** When the snapshot was taken (the database's clock). */
  takenAt: Date;
};

/**
 * Tables that are not data: the migration bookkeeping (restore applies
 * migrations itself), leases and the node registry (who runs what right now).
 */
const NOT_DATA = new Set(["sluice_migrations", "sluice_migration_lock", "leases", "sluice_nodes"]);

/**
 * Copies every data table of the current schema into `dir/{table}.copy`
 * (COPY text format) in one REPEATABLE READ, READ ONLY transaction, so all
 * files are one consistent snapshot while ingest goes on. `events` is
 * copied through its parent (every partition). Also reads, in that same
 * snapshot, the applied migrations, the partitions and every blob
 * reference. Tables come in foreign-key order (parents first). Calls
 * `onTable` after each. Throws database and file errors.
 */
export async function dumpDatabase(
  pool: pg.Pool,
  dir: string,
  onTable: (dump: TableDump) => void,
): Promise<DatabaseSnapshot> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const takenAt = (await client.query("SELECT now() AS t")).rows[0].t as Date;
    const tables = await dataTablesInOrder(client);
    const dumps: TableDump[] = [];
    for (const { table, columns } of tables) {
      const file = `${table}.copy`;
      const hash = createHash("sha256");
      let bytes = 0;
      let rows = 0;
      const count = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          bytes += chunk.length;
          for (const byte of chunk) if (byte === 10) rows += 1;
          done(null, chunk);
        },
      });
      const list = columns.map(quoteIdent).join(", ");
      await pipeline(
        client.query(copyTo(`COPY (SELECT ${list} FROM ${quoteIdent(table)}) TO STDOUT`)),
        count,
        createWriteStream(join(dir, file)),
      );
      const dump = { table, columns, rows, file, bytes, sha256: hash.digest("hex") };
      dumps.push(dump);
      onTable(dump);
    }
    const migrations = (
      await client.query("SELECT version, name, checksum FROM sluice_migrations ORDER BY version")
    ).rows.map((r) => ({ version: Number(r.version), name: r.name, checksum: r.checksum }));
    const partitions = (
      await client.query(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
          ORDER BY 1`,
      )
    ).rows.map((r) => r.relname as string);
    const blobs = (
      await client.query(
        `SELECT blob_key, min(sha1) AS sha1 FROM (
           SELECT blob_key, sha1 FROM attachments UNION ALL
           SELECT blob_key, sha1 FROM artifacts UNION ALL
           SELECT blob_key, sha1 FROM upload_chunks) refs
          GROUP BY blob_key ORDER BY blob_key`,
      )
    ).rows.map((r) => ({ blobKey: r.blob_key as string, sha1: r.sha1 as string }));
    const serverVersion = (await client.query("SHOW server_version")).rows[0].server_version;
    await client.query("COMMIT");
    return { tables: dumps, migrations, serverVersion, partitions, blobs, takenAt };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** The data tables that hold at least one row (a restore refuses them), in foreign-key order. */
export async function nonEmptyTables(pool: pg.Pool): Promise<string[]> {
  const client = await pool.connect();
  try {
    const found: string[] = [];
    for (const { table } of await dataTablesInOrder(client)) {
      const result = await client.query(
        `SELECT EXISTS (SELECT 1 FROM ${quoteIdent(table)}) AS any`,
      );
      if (result.rows[0].any) found.push(table);
    }
    return found;
  } finally {
    client.release();
  }
}

/**
 * Loads a backup's table files into the current schema in one transaction
 * (all or nothing), parents first, then moves every identity sequence past
 * the restored ids. The schema (migrations, event partitions) must be in
 * place and the tables empty. Throws a file whose bytes do not match its
 * SHA-256, before anything is written.
 */
export async function loadDatabase(
  pool: pg.Pool,
  dir: string,
  tables: TableDump[],
  onTable: (dump: TableDump) => void,
): Promise<void> {
  for (const dump of tables) {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(join(dir, dump.file))) hash.update(chunk as Buffer);
    if (hash.digest("hex") !== dump.sha256)
      throw new Error(`backup file ${dump.file} is corrupt (SHA-256 differs from the manifest)`);
  }
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const order = (await dataTablesInOrder(client)).map((t) => t.table);
    const byTable = new Map(tables.map((t) => [t.table, t]));
    for (const table of order) {
      const dump = byTable.get(table);
      if (!dump) continue;
      const list = dump.columns.map(quoteIdent).join(", ");
      await pipeline(
        createReadStream(join(dir, dump.file)),
        client.query(copyFrom(`COPY ${quoteIdent(table)} (${list}) FROM STDIN`)),
      );
      onTable(dump);
    }
    const identities = await client.query(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND is_identity = 'YES'`,
    );
    for (const { table_name, column_name } of identities.rows) {
      await client.query(
        `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(${quoteIdent(column_name)}), 0) + 1, false)
           FROM ${quoteIdent(table_name)}`,
        [quoteIdent(table_name), column_name],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Data tables (plain and partitioned parents, no partitions) with their columns, parents before children. */
async function dataTablesInOrder(
  client: pg.PoolClient,
): Promise<{ table: string; columns: string[] }[]> {
  const tables = await client.query(
    `SELECT c.relname AS table,
            array_agg(a.attname::text ORDER BY a.attnum) AS columns
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      GROUP BY c.relname ORDER BY c.relname`,
  );
  const edges = await client.query(
    `SELECT c.relname AS child, p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_class p ON p.oid = k.confrelid
      WHERE k.contype = 'f' AND c.oid <> p.oid`,
  );
  const parents = new Map<string, string[]>();
  for (const { child, parent } of edges.rows)
    parents.set(child, [...(parents.get(child) ?? []), parent]);
  const all = new Map<string, string[]>(
    tables.rows
      .filter((r) => !NOT_DATA.has(r.table) && !/^events_p[0-9]{8}$/.test(r.table))
      .map((r) => [r.table as string, r.columns as string[]]),
  );
  const ordered: { table: string; columns: string[] }[] = [];
  const seen = new Set<string>();
  const visit = (table: string) => {
    if (seen.has(table) || !all.has(table)) return;
    seen.add(table);
    for (const parent of parents.get(table) ?? []) visit(parent);
    ordered.push({ table, columns: all.get(table) ?? [] });
  };
  for (const table of all.keys()) visit(table);
  return ordered;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
