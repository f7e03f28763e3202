import { is } from "drizzle-orm";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations } from "../src/migrate.ts";
import * as schema from "../src/schema.ts";
import { createTestDatabase, openTestPool, silentLog, type TestDatabase } from "./test-database.ts";

type Column = { type: string; nullable: boolean; hasDefault: boolean };

const tables = Object.values(schema as Record<string, unknown>).filter((v): v is PgTable =>
  is(v, PgTable),
);

function normalizeType(sqlType: string): string {
  return sqlType
    .replace("timestamp with time zone", "timestamptz")
    .replace("bigserial", "bigint")
    .replace(/\[\]$/, "[]");
}

describe("the drizzle schema mirrors migrations/*.sql", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = openTestPool(db.url);
    await applyMigrations(pool, {
      holder: "test",
      leaseMs: 10_000,
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 60_000,
      lockRetries: 3,
      log: silentLog,
    });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("has the same tables and columns, with the same types, nullability and defaults", async () => {
    const result = await pool.query(`
      SELECT c.relname AS table, a.attname AS column,
             format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
             (a.atthasdef OR a.attidentity <> '') AS has_default
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
         AND a.attnum > 0 AND NOT a.attisdropped`);
    const database = new Map<string, Map<string, Column>>();
    for (const row of result.rows) {
      const columns = database.get(row.table) ?? new Map();
      columns.set(row.column, {
        type: normalizeType(row.type.replace("timestamp with time zone", "timestamptz")),
        nullable: row.nullable,
        hasDefault: row.has_default,
      });
      database.set(row.table, columns);
    }
    const drizzle = new Map<string, Map<string, Column>>();
    for (const table of tables) {
      const config = getTableConfig(table);
      drizzle.set(
        config.name,
        new Map(
          config.columns.map((c) => [
            c.name,
            {
              type: normalizeType(
                c.getSQLType().replace("timestamp with time zone", "timestamptz"),
              ),
              nullable: !c.notNull,
              hasDefault: c.hasDefault || c.generatedIdentity !== undefined,
            },
          ]),
        ),
      );
    }
    const asObject = (m: Map<string, Map<string, Column>>) =>
      Object.fromEntries(
        [...m].sort().map(([t, cols]) => [t, Object.fromEntries([...cols].sort())]),
      );
    expect(asObject(drizzle)).toEqual(asObject(database));
  });
});
