import { describe, expect, it } from "vitest";
import { parseSql, parseSqlOffThread } from "./sql-parser.ts";

describe("parseSqlOffThread", () => {
  it("keeps the trees of the texts it parsed, and their errors, without loading the parser here", async () => {
    const good = "ALTER TABLE events DROP COLUMN payload;";
    const bad = "ALTER TABLE events DROP COLUMN;";
    // Nothing loaded yet in this file's process: an unknown text cannot be parsed.
    expect(() => parseSql("SELECT 1")).toThrow(/loadSqlParser/);
    await parseSqlOffThread([good, bad, good]);
    const stmt = parseSql(good).stmts?.[0]?.stmt as { AlterTableStmt?: { relation?: object } };
    expect(stmt.AlterTableStmt?.relation).toMatchObject({ relname: "events" });
    expect(() => parseSql(bad)).toThrow(/syntax error/);
    expect(() => parseSql("SELECT 2")).toThrow(/loadSqlParser/);
    // The parser's memory went with its thread (128 MiB of WebAssembly memory otherwise).
    expect(process.memoryUsage().external).toBeLessThan(64 * 1024 * 1024);
  });
});
