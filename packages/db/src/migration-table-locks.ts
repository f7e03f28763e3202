import type pg from "pg";
import { loadSqlParser, parseSql } from "./sql-parser.ts";

/** A table lock mode of `LOCK TABLE`, weakest first (Postgres's table-level lock modes). */
const MODES = [
  "ROW SHARE",
  "ROW EXCLUSIVE",
  "SHARE UPDATE EXCLUSIVE",
  "SHARE",
  "SHARE ROW EXCLUSIVE",
  "EXCLUSIVE",
  "ACCESS EXCLUSIVE",
] as const;
type TableLockMode = (typeof MODES)[number];

/** One table a migration file locks, and the strongest mode its statements take on it. */
export type TableLock = { table: string; mode: TableLockMode };

/**
 * `ALTER TABLE` subcommands that take ACCESS EXCLUSIVE on the table (the
 * Postgres docs' "ALTER TABLE" lock notes). Others (VALIDATE CONSTRAINT,
 * SET STATISTICS…) take weaker locks and are left to their statement.
 */
const ACCESS_EXCLUSIVE_SUBCOMMANDS = new Set([
  "AT_AddColumn",
  "AT_ColumnDefault",
  "AT_DropColumn",
  "AT_AlterColumnType",
  "AT_DropNotNull",
  "AT_SetNotNull",
  "AT_DropConstraint",
]);

type RangeVar = { schemaname?: string; relname?: string };
type Constraint = { contype?: string; pktable?: RangeVar };
type Node = Record<string, unknown>;

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
const tableName = (r: RangeVar | undefined) =>
  r?.relname
    ? `${r.schemaname ? `${quoteIdent(r.schemaname)}.` : ""}${quoteIdent(r.relname)}`
    : null;

/**
 * The tables a transactional migration file's statements lock strongly
 * enough to queue behind live traffic, in the order the file first touches
 * them, each with the strongest mode the file takes on it: ACCESS EXCLUSIVE
 * for `ALTER TABLE` adding, dropping or altering a column or a CHECK
 * constraint; SHARE ROW EXCLUSIVE on both tables of a foreign key (an
 * `ALTER TABLE … ADD … REFERENCES` or a `CREATE TABLE` with `REFERENCES`);
 * SHARE for a non-concurrent `CREATE INDEX`. Never a mode stronger than
 * the statement itself takes. Parses with the real Postgres parser
 * (libpg-query); throws its error for SQL Postgres would not accept.
 */
export async function tableLocksOf(sql: string): Promise<TableLock[]> {
  await loadSqlParser();
  const locks = new Map<string, TableLockMode>();
  const add = (r: RangeVar | undefined, mode: TableLockMode) => {
    const name = tableName(r);
    if (!name) return;
    const held = locks.get(name);
    if (!held || MODES.indexOf(mode) > MODES.indexOf(held)) locks.set(name, mode);
  };
  const foreignKeys = (constraints: unknown[] | undefined) =>
    (constraints ?? [])
      .map((c) => (c as { Constraint?: Constraint }).Constraint)
      .filter((c): c is Constraint => c?.contype === "CONSTR_FOREIGN");
  for (const { stmt } of parseSql(sql).stmts ?? []) {
    const node = (stmt ?? {}) as Node;
    if (node.AlterTableStmt) {
      const alter = node.AlterTableStmt as {
        relation?: RangeVar;
        objtype?: string;
        cmds?: { AlterTableCmd?: { subtype?: string; def?: Node } }[];
      };
      if (alter.objtype !== "OBJECT_TABLE") continue;
      for (const { AlterTableCmd: cmd } of alter.cmds ?? []) {
        const def = cmd?.def ?? {};
        const added = (def.Constraint as Constraint | undefined) ?? null;
        const columnFks = foreignKeys((def.ColumnDef as { constraints?: unknown[] })?.constraints);
        if (cmd?.subtype === "AT_AddConstraint" && added?.contype === "CONSTR_FOREIGN") {
          add(alter.relation, "SHARE ROW EXCLUSIVE");
          add(added.pktable, "SHARE ROW EXCLUSIVE");
        } else if (
          ACCESS_EXCLUSIVE_SUBCOMMANDS.has(cmd?.subtype ?? "") ||
          (cmd?.subtype === "AT_AddConstraint" && added?.contype === "CONSTR_CHECK")
        ) {
          add(alter.relation, "ACCESS EXCLUSIVE");
        }
        for (const fk of columnFks) add(fk.pktable, "SHARE ROW EXCLUSIVE");
      }
    } else if (node.CreateStmt) {
      const create = node.CreateStmt as { tableElts?: Node[] };
      for (const element of create.tableElts ?? []) {
        const column = element.ColumnDef as { constraints?: unknown[] } | undefined;
        const fks = column ? foreignKeys(column.constraints) : foreignKeys([element]);
        for (const fk of fks) add(fk.pktable, "SHARE ROW EXCLUSIVE");
      }
    } else if (node.IndexStmt) {
      const index = node.IndexStmt as { relation?: RangeVar; concurrent?: boolean };
      if (!index.concurrent) add(index.relation, "SHARE");
    }
  }
  return [...locks].map(([table, mode]) => ({ table, mode }));
}

const isLockWait = (error: unknown) => {
  const code = (error as { code?: string }).code;
  return code === "55P03" || code === "40P01";
};

/**
 * Takes `locks` in the open transaction of `client` before the file's own
 * statements run, so that those never wait for a lock while holding
 * another: that wait is what deadlocks with live transactions taking the
 * same tables in the other order (release 0.1.0's worker locks its event
 * row, then the issue; migration 0006 alters `issues`, then `events`),
 * and then every attempt dies on `lock_timeout`. Only the first lock of a
 * round waits while holding none; when a later one is not granted within
 * `lock_timeout` (or the round is a deadlock's victim) the round is rolled
 * back to a savepoint, releasing what it took, and the next round waits on
 * that table first. Reorders `locks` in place (the busy table stays in
 * front for the caller's next attempt). Skips tables that do not exist
 * yet. Throws the last 55P03/40P01 after one round per table; the caller
 * retries the file with backoff.
 */
export async function takeTableLocks(client: pg.PoolClient, locks: TableLock[]): Promise<void> {
  if (locks.length === 0) return;
  const existing = await client.query<{ table: string; found: boolean }>(
    "SELECT t AS table, to_regclass(t) IS NOT NULL AS found FROM unnest($1::text[]) AS t",
    [locks.map((l) => l.table)],
  );
  const found = new Set(existing.rows.filter((r) => r.found).map((r) => r.table));
  let lastError: unknown;
  for (let round = 0; round < locks.length; round++) {
    const order = locks.filter((l) => found.has(l.table));
    await client.query("SAVEPOINT sluice_table_locks");
    let at = 0;
    try {
      for (; at < order.length; at++) {
        const lock = order[at] as TableLock;
        await client.query(`LOCK TABLE ${lock.table} IN ${lock.mode} MODE`);
      }
      await client.query("RELEASE SAVEPOINT sluice_table_locks");
      return;
    } catch (error) {
      if (!isLockWait(error)) throw error;
      lastError = error;
      await client.query("ROLLBACK TO SAVEPOINT sluice_table_locks");
      // The first lock waited holding nothing: the table is just busy; back off.
      if (at === 0) throw error;
      const busy = order[at] as TableLock;
      locks.splice(locks.indexOf(busy), 1);
      locks.unshift(busy);
    }
  }
  throw lastError;
}
