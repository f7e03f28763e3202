import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatFinding } from "../src/finding.ts";
import { lintMigrations } from "../src/lint-migrations.ts";

const BASE = `CREATE TABLE IF NOT EXISTS accounts (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  note text,
  plan text
);
`;
const RELEASE = (version: string, lastMigration: number) => ({
  version,
  commit: "0".repeat(40),
  date: "2026-11-23",
  lastMigration,
});

let roots: string[] = [];
afterEach(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
  roots = [];
});

/** Lints a repository holding the base migration and `sql` as 0002; returns the printed lines. */
async function lint(
  sql: string,
  extra: { releases?: object[]; deprecations?: object[] } = {},
): Promise<string[]> {
  const root = mkdtempSync(join(tmpdir(), "sluice-lint-"));
  roots.push(root);
  mkdirSync(join(root, "migrations"));
  writeFileSync(join(root, "migrations/0001_base.sql"), BASE);
  writeFileSync(join(root, "migrations/0002_change.sql"), sql);
  writeFileSync(
    join(root, "migrations/deprecations.json"),
    JSON.stringify({ deprecations: extra.deprecations ?? [] }),
  );
  if (extra.releases)
    writeFileSync(join(root, "releases.json"), JSON.stringify({ releases: extra.releases }));
  return (await lintMigrations({ repoRoot: root })).map(formatFinding);
}

const AT = "migrations/0002_change.sql:1:";

describe("migration lint rules: each bad migration, and its safe rewrite", () => {
  it.each([
    [
      "no-rename (column)",
      "ALTER TABLE accounts RENAME COLUMN note TO memo;\n",
      `${AT} [no-rename] renaming column accounts.note breaks the release still reading it: add a new column instead`,
      "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS memo text;\n",
    ],
    [
      "no-rename (table)",
      "ALTER TABLE accounts RENAME TO customers;\n",
      `${AT} [no-rename] renaming table accounts breaks the release still reading it: add a new table instead`,
      "CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY);\n",
    ],
    [
      "no-type-change",
      "ALTER TABLE accounts ALTER COLUMN plan TYPE bigint USING 0;\n",
      `${AT} [no-type-change] changing the type of accounts.plan rewrites the table and breaks the release still reading it: add a new column instead`,
      "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS plan_code text;\n",
    ],
    [
      "not-null-needs-default",
      "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS tier text NOT NULL;\n",
      `${AT} [not-null-needs-default] adding NOT NULL column accounts.tier without a default breaks the running release's inserts: give it a default or make it nullable`,
      "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS tier text NOT NULL DEFAULT 'free';\n",
    ],
    [
      "no-set-not-null",
      "ALTER TABLE accounts ALTER COLUMN note SET NOT NULL;\n",
      `${AT} [no-set-not-null] SET NOT NULL on accounts.note scans the table under an exclusive lock and breaks the running release's inserts: add CHECK (note IS NOT NULL) NOT VALID instead`,
      "ALTER TABLE accounts ADD CONSTRAINT accounts_note_not_null CHECK (note IS NOT NULL) NOT VALID;\n",
    ],
    [
      "index-concurrently",
      "CREATE INDEX IF NOT EXISTS accounts_name ON accounts (name);\n",
      `${AT} [index-concurrently] index accounts_name on existing table accounts must be created CONCURRENTLY, or it blocks writes while it builds`,
      "-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name ON accounts (name);\n",
    ],
    [
      "concurrently-outside-transaction",
      "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name ON accounts (name);\n",
      `${AT} [concurrently-outside-transaction] CREATE INDEX CONCURRENTLY accounts_name cannot run in a transaction: start the file with -- sluice:no-transaction`,
      "-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name ON accounts (name);\n",
    ],
    [
      "constraint-not-valid",
      "ALTER TABLE accounts ADD CONSTRAINT accounts_plan_known CHECK (plan IN ('free', 'paid'));\n",
      `${AT} [constraint-not-valid] constraint accounts_plan_known on existing table accounts must be added NOT VALID (and validated in a later statement), or it scans the table under an exclusive lock`,
      "ALTER TABLE accounts ADD CONSTRAINT accounts_plan_known CHECK (plan IN ('free', 'paid')) NOT VALID;\n",
    ],
    [
      "no-volatile-default",
      "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS token uuid DEFAULT gen_random_uuid();\n",
      `${AT} [no-volatile-default] column accounts.token gets a volatile default gen_random_uuid(): Postgres rewrites the whole table under an exclusive lock; add it without a default and backfill`,
      "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now();\n",
    ],
    [
      "if-not-exists",
      "CREATE TABLE invoices (id bigint PRIMARY KEY);\n",
      `${AT} [if-not-exists] CREATE TABLE invoices needs IF NOT EXISTS, so that a retried migration can run again`,
      "CREATE TABLE IF NOT EXISTS invoices (id bigint PRIMARY KEY);\n",
    ],
    [
      "drop-n-plus-2 (not deprecated)",
      "ALTER TABLE accounts DROP COLUMN IF EXISTS note;\n",
      `${AT} [drop-n-plus-2] dropping column accounts.note breaks the releases still reading it: list it in migrations/deprecations.json and drop it two releases later`,
      "SELECT 1;\n",
    ],
  ])("%s", async (_rule, bad, message, safe) => {
    expect(await lint(bad)).toEqual([message]);
    expect(await lint(safe)).toEqual([]);
  });

  it("drop-n-plus-2: allows a drop only two releases after the code stopped using it", async () => {
    const sql = "ALTER TABLE accounts DROP COLUMN IF EXISTS note;\n";
    const deprecations = [
      { table: "accounts", column: "note", stoppedIn: "0.2.0", reason: "replaced by memo" },
    ];
    const oneRelease = [RELEASE("0.1.0", 1), RELEASE("0.2.0", 1)];
    expect(await lint(sql, { releases: oneRelease, deprecations })).toEqual([
      `${AT} [drop-n-plus-2] dropping column accounts.note in the next release is too early: it was deprecated in 0.2.0, and may go from the second release after it`,
    ]);
    const twoReleases = [...oneRelease, RELEASE("0.3.0", 1)];
    expect(await lint(sql, { releases: twoReleases, deprecations })).toEqual([]);
  });

  it("names the line of the statement in a file of several", async () => {
    const findings = await lint(
      "-- widen the plan\nSELECT 1;\n\nALTER TABLE accounts ALTER COLUMN plan TYPE int USING 0;\n",
    );
    expect(findings[0]).toMatch(/^migrations\/0002_change\.sql:4: \[no-type-change\]/);
  });

  it("runs squawk's general rules too", async () => {
    const findings = await lint(
      "CREATE TABLE IF NOT EXISTS logs (id int PRIMARY KEY, at timestamp);\n",
    );
    expect(findings.some((f) => f.includes("[squawk/prefer-timestamp-tz]"))).toBe(true);
  });

  it("reports SQL that Postgres cannot parse", async () => {
    expect(await lint("ALTER TABLE accounts ADD COLUM x int;\n")).toEqual([
      expect.stringMatching(/^migrations\/0002_change\.sql:1: \[parse\] syntax error/),
    ]);
  });
});

describe("deprecated-in-use", () => {
  it("fails while the drizzle schema or SQL in the sources still touches a deprecated column", async () => {
    const root = mkdtempSync(join(tmpdir(), "sluice-lint-"));
    roots.push(root);
    mkdirSync(join(root, "migrations"));
    mkdirSync(join(root, "apps/server/src"), { recursive: true });
    writeFileSync(join(root, "migrations/0001_base.sql"), BASE);
    const deprecations = [
      { table: "issues", column: "logger", stoppedIn: "0.2.0", reason: "test" },
    ];
    writeFileSync(join(root, "migrations/deprecations.json"), JSON.stringify({ deprecations }));
    writeFileSync(
      join(root, "apps/server/src/query.ts"),
      'export const q = "\\n";\nexport const sql = `SELECT logger FROM issues`;\n',
    );
    expect((await lintMigrations({ repoRoot: root })).map(formatFinding)).toEqual([
      "packages/db/src/schema.ts:1: [deprecated-in-use] the drizzle schema still maps issues.logger, deprecated in 0.2.0",
      "apps/server/src/query.ts:2: [deprecated-in-use] SQL here still names issues.logger, deprecated in 0.2.0",
    ]);
  });
});
