import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { schema } from "@sluice/db";
import { is } from "drizzle-orm";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { type Deprecation, deprecatedName } from "./deprecations.ts";
import type { Finding } from "./finding.ts";

const SQL_KEYWORD = /\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|INTO)\b/i;
const STRING_LITERAL = /`(?:[^`\\]|\\.)*`|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g;

/**
 * Fails when the current code still touches anything deprecated: the
 * drizzle schema maps the table or column, or a SQL string in the sources
 * under `roots` names it (the table together with the column, as whole
 * words). A deprecation is a promise that the code no longer uses it.
 */
export function checkDeprecatedUsage(
  deprecations: Deprecation[],
  repoRoot: string,
  roots: string[],
): Finding[] {
  const findings: Finding[] = [];
  const tables = Object.values(schema as Record<string, unknown>)
    .filter((v): v is PgTable => is(v, PgTable))
    .map((t) => getTableConfig(t));
  for (const d of deprecations) {
    const table = tables.find((t) => t.name === d.table);
    if (table && (!d.column || table.columns.some((c) => c.name === d.column))) {
      findings.push({
        file: "packages/db/src/schema.ts",
        line: 1,
        rule: "deprecated-in-use",
        message: `the drizzle schema still maps ${deprecatedName(d)}, deprecated in ${d.stoppedIn}`,
      });
    }
  }
  for (const path of roots.flatMap((root) => sourceFiles(join(repoRoot, root)))) {
    const source = readFileSync(path, "utf8");
    for (const match of source.matchAll(STRING_LITERAL)) {
      const literal = match[0];
      if (!SQL_KEYWORD.test(literal)) continue;
      for (const d of deprecations) {
        const words = [d.table, ...(d.column ? [d.column] : [])];
        if (words.every((w) => new RegExp(`\\b${w}\\b`).test(literal))) {
          findings.push({
            file: relative(repoRoot, path),
            line: source.slice(0, match.index).split("\n").length,
            rule: "deprecated-in-use",
            message: `SQL here still names ${deprecatedName(d)}, deprecated in ${d.stoppedIn}`,
          });
        }
      }
    }
  }
  return findings;
}

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "node_modules" ? [] : sourceFiles(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}
