import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { loadSqlParser, type MigrationFile, parseSql, readMigrationFiles } from "@sluice/db";
import { checkDeprecatedUsage } from "./deprecated-usage.ts";
import { type Deprecation, readDeprecations } from "./deprecations.ts";
import type { Finding } from "./finding.ts";
import { type Release, readReleases, releaseIndexOf } from "./releases.ts";
import { lintStatements } from "./sql-rules.ts";
import { runSquawk } from "./squawk.ts";

export type LintOptions = {
  /** The repository root: `migrations/`, `releases.json` and the sources are read from it. */
  repoRoot: string;
  /** Defaults to `{repoRoot}/migrations`. */
  migrationsDir?: string;
};

/** Where the code lives that must not touch deprecated tables or columns. */
const SOURCE_ROOTS = [
  "packages/db/src",
  "packages/grouping/src",
  "packages/protocol/src",
  "packages/queue/src",
  "apps/server/src",
];

/**
 * Lints every migration file in order, with Sluice's own rules (real
 * Postgres parser) and squawk's general ones, checks drops against
 * `migrations/deprecations.json` and `releases.json` (N+2), and checks that
 * the code no longer touches anything deprecated. Returns every finding;
 * none means the migrations are safe to roll out.
 */
export async function lintMigrations(options: LintOptions): Promise<Finding[]> {
  const dir = options.migrationsDir ?? join(options.repoRoot, "migrations");
  const releasesPath = join(options.repoRoot, "releases.json");
  const deprecationsPath = join(dir, "deprecations.json");
  const releases: Release[] = existsSync(releasesPath) ? readReleases(releasesPath) : [];
  const deprecations: Deprecation[] = existsSync(deprecationsPath)
    ? readDeprecations(deprecationsPath)
    : [];
  await loadSqlParser();

  const findings: Finding[] = [];
  const existingTables = new Set<string>();
  for (const file of readMigrationFiles(dir)) {
    const display = relative(options.repoRoot, join(dir, file.name));
    const parsed = parse(file, display);
    if ("finding" in parsed) {
      findings.push(parsed.finding);
      continue;
    }
    const result = lintStatements(
      {
        file: display,
        sql: file.sql,
        noTransaction: file.noTransaction,
        existingTables,
        fileRelease: releaseIndexOf(file.version, releases),
        releases,
        deprecations,
      },
      parsed.statements,
    );
    findings.push(...result.findings);
    findings.push(...(await runSquawk(join(dir, file.name), display, !file.noTransaction)));
    for (const table of result.createdTables) existingTables.add(table);
  }
  findings.push(...checkDeprecatedUsage(deprecations, options.repoRoot, SOURCE_ROOTS));
  return findings;
}

function parse(
  file: MigrationFile,
  display: string,
): { statements: NonNullable<ReturnType<typeof parseSql>["stmts"]> } | { finding: Finding } {
  try {
    return { statements: parseSql(file.sql).stmts ?? [] };
  } catch (error) {
    return {
      finding: { file: display, line: 1, rule: "parse", message: (error as Error).message },
    };
  }
}
