import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { Finding } from "./finding.ts";

const run = promisify(execFile);

/**
 * Squawk rules left out, each for a reason: the runner sets `lock_timeout`
 * and `statement_timeout` on every statement, and Sluice's own rules cover
 * renames, type changes, NOT NULL, indexes, constraints, defaults, IF [NOT]
 * EXISTS and drops with the N+2 knowledge squawk does not have.
 */
const SQUAWK_EXCLUDED = [
  "require-lock-timeout",
  "require-statement-timeout",
  "renaming-column",
  "renaming-table",
  "changing-column-type",
  "adding-required-field",
  "adding-not-nullable-field",
  "adding-field-with-default",
  "require-concurrent-index-creation",
  "require-concurrent-index-deletion",
  "constraint-missing-not-valid",
  "disallowed-unique-constraint",
  "ban-drop-column",
  "ban-drop-table",
  "prefer-robust-stmts",
  "ban-concurrent-index-creation-in-transaction",
];

type SquawkViolation = {
  file: string;
  line: number;
  message: string;
  rule_name: string;
  help?: string;
};

/**
 * Runs squawk (npm `squawk-cli`, which ships its binary) over one file for
 * the general rules (types, foreign keys, unsafe locks); a transactional
 * file is linted as one transaction. Findings are named `squawk/<rule>`.
 */
export async function runSquawk(
  path: string,
  displayName: string,
  inTransaction: boolean,
): Promise<Finding[]> {
  const pkg = createRequire(import.meta.url).resolve("squawk-cli/package.json");
  const bin = join(dirname(pkg), "js/bin/squawk");
  const args = [
    "--reporter",
    "json",
    "--pg-version",
    "15",
    `--exclude=${SQUAWK_EXCLUDED.join(",")}`,
  ];
  args.push(inTransaction ? "--assume-in-transaction" : "--no-assume-in-transaction", path);
  const output = await run(process.execPath, [bin, ...args]).then(
    (r) => r.stdout,
    (error: { stdout?: string }) => error.stdout ?? "[]",
  );
  const violations = JSON.parse(output || "[]") as SquawkViolation[];
  return violations.map((v) => ({
    file: displayName,
    line: v.line + 1,
    rule: `squawk/${v.rule_name}`,
    message: v.help ? `${v.message} ${v.help}` : v.message,
  }));
}
