import { loadSqlParser, parseSql } from "./sql-parser.ts";

/**
 * Splits SQL into its statements with the real Postgres parser (libpg-query),
 * so quotes, dollar-quoted bodies and comments never split wrongly. Throws
 * the parser's error for SQL Postgres would not accept.
 */
export async function splitStatements(sql: string): Promise<string[]> {
  await loadSqlParser();
  const stmts = parseSql(sql).stmts ?? [];
  return stmts
    .map(({ stmt_location, stmt_len }) => {
      const start = stmt_location ?? 0;
      return sql
        .slice(start, stmt_len === undefined || stmt_len === 0 ? undefined : start + stmt_len)
        .trim();
    })
    .filter((statement) => statement !== "");
}
