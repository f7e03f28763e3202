import { type Deprecation, deprecatedName } from "./deprecations.ts";
import type { Finding } from "./finding.ts";
import type { Release } from "./releases.ts";

/** What the rules know about the file being linted and the ones before it. */
export type RuleContext = {
  file: string;
  sql: string;
  noTransaction: boolean;
  /** Tables created by earlier migration files: the ones live traffic uses. */
  existingTables: Set<string>;
  /** Index in `releases` of the release that ships this file (`releases.length`: the next one). */
  fileRelease: number;
  releases: Release[];
  deprecations: Deprecation[];
};

type Node = Record<string, unknown>;
type RawStatement = { stmt?: Node; stmt_location?: number };

const node = (value: unknown): Node =>
  value !== null && typeof value === "object" ? (value as Node) : {};
const list = (value: unknown): Node[] => (Array.isArray(value) ? value.map(node) : []);
const text = (value: unknown): string => (typeof value === "string" ? value : "");

/** Functions whose result does not change per row, so a DEFAULT of them never rewrites a table. */
const NON_VOLATILE_DEFAULTS = new Set(["now", "transaction_timestamp", "statement_timestamp"]);
const SERIAL_TYPES = new Set([
  "serial",
  "bigserial",
  "smallserial",
  "serial4",
  "serial8",
  "serial2",
]);

/**
 * Sluice's own migration rules, on the statements as the real Postgres
 * parser (libpg-query) reads them. Each rule protects the release that is
 * still running while this one rolls out (README "Upgrading"). Returns the
 * findings and the tables this file creates.
 */
export function lintStatements(
  ctx: RuleContext,
  statements: RawStatement[],
): { findings: Finding[]; createdTables: string[] } {
  const findings: Finding[] = [];
  const createdTables: string[] = [];
  for (const raw of statements) {
    const line = lineOf(ctx.sql, raw.stmt_location ?? 0);
    const report = (rule: string, message: string) =>
      findings.push({ file: ctx.file, line, rule, message });
    const stmt = node(raw.stmt);
    const [kind] = Object.keys(stmt);
    const body = node(stmt[kind ?? ""]);
    switch (kind) {
      case "CreateStmt": {
        const table = text(node(body.relation).relname);
        createdTables.push(table);
        if (!body.if_not_exists)
          report(
            "if-not-exists",
            `CREATE TABLE ${table} needs IF NOT EXISTS, so that a retried migration can run again`,
          );
        break;
      }
      case "IndexStmt":
        lintIndex(ctx, body, report);
        break;
      case "RenameStmt":
        lintRename(body, report);
        break;
      case "AlterTableStmt":
        lintAlterTable(ctx, body, report);
        break;
      case "DropStmt":
        lintDrop(ctx, body, report);
        break;
      case "AlterEnumStmt":
        if (body.newValNeighbor) {
          report(
            "enum-value-at-end",
            `enum value '${text(body.newVal)}' must be added at the end: BEFORE and AFTER change what the running release compares`,
          );
        }
        if (body.newVal && !body.skipIfNewValExists) {
          report(
            "if-not-exists",
            `ALTER TYPE ... ADD VALUE '${text(body.newVal)}' needs IF NOT EXISTS, so that a retried migration can run again`,
          );
        }
        break;
    }
  }
  return { findings, createdTables };
}

type Report = (rule: string, message: string) => void;

function lintIndex(ctx: RuleContext, index: Node, report: Report) {
  const table = text(node(index.relation).relname);
  const name = text(index.idxname) || "(unnamed)";
  if (!index.if_not_exists)
    report(
      "if-not-exists",
      `CREATE INDEX ${name} needs IF NOT EXISTS, so that a retried migration can run again`,
    );
  if (ctx.existingTables.has(table) && !index.concurrent) {
    report(
      "index-concurrently",
      `index ${name} on existing table ${table} must be created CONCURRENTLY, or it blocks writes while it builds`,
    );
  }
  if (index.concurrent && !ctx.noTransaction) {
    report(
      "concurrently-outside-transaction",
      `CREATE INDEX CONCURRENTLY ${name} cannot run in a transaction: start the file with -- sluice:no-transaction`,
    );
  }
}

function lintRename(rename: Node, report: Report) {
  const table = text(node(rename.relation).relname);
  if (rename.renameType === "OBJECT_COLUMN") {
    report(
      "no-rename",
      `renaming column ${table}.${text(rename.subname)} breaks the release still reading it: add a new column instead`,
    );
  } else if (rename.renameType === "OBJECT_TABLE") {
    report(
      "no-rename",
      `renaming table ${table} breaks the release still reading it: add a new table instead`,
    );
  }
}

function lintAlterTable(ctx: RuleContext, alter: Node, report: Report) {
  const table = text(node(alter.relation).relname);
  const existing = ctx.existingTables.has(table);
  for (const cmd of list(alter.cmds).map((c) => node(c.AlterTableCmd))) {
    const column = text(cmd.name);
    switch (cmd.subtype) {
      case "AT_AddColumn": {
        const def = node(node(cmd.def).ColumnDef);
        const name = `${table}.${text(def.colname)}`;
        if (!cmd.missing_ok)
          report(
            "if-not-exists",
            `ADD COLUMN ${name} needs IF NOT EXISTS, so that a retried migration can run again`,
          );
        if (!existing) break;
        const constraints = list(def.constraints).map((c) => node(c.Constraint));
        const defaults = constraints.filter((c) => c.contype === "CONSTR_DEFAULT");
        if (constraints.some((c) => c.contype === "CONSTR_NOTNULL") && defaults.length === 0) {
          report(
            "not-null-needs-default",
            `adding NOT NULL column ${name} without a default breaks the running release's inserts: give it a default or make it nullable`,
          );
        }
        const typeName =
          list(node(def.typeName).names)
            .map((n) => text(node(n.String).sval))
            .at(-1) ?? "";
        const volatile = SERIAL_TYPES.has(typeName)
          ? `${typeName} (nextval)`
          : defaults.map((d) => volatileCall(d.raw_expr)).find(Boolean);
        if (volatile) {
          report(
            "no-volatile-default",
            `column ${name} gets a volatile default ${volatile}: Postgres rewrites the whole table under an exclusive lock; add it without a default and backfill`,
          );
        }
        break;
      }
      case "AT_AlterColumnType":
        report(
          "no-type-change",
          `changing the type of ${table}.${column} rewrites the table and breaks the release still reading it: add a new column instead`,
        );
        break;
      case "AT_SetNotNull":
        if (existing) {
          report(
            "no-set-not-null",
            `SET NOT NULL on ${table}.${column} scans the table under an exclusive lock and breaks the running release's inserts: add CHECK (${column} IS NOT NULL) NOT VALID instead`,
          );
        }
        break;
      case "AT_AddConstraint": {
        const constraint = node(node(cmd.def).Constraint);
        const name = text(constraint.conname) || "(unnamed)";
        if (!existing) break;
        if (
          (constraint.contype === "CONSTR_CHECK" || constraint.contype === "CONSTR_FOREIGN") &&
          !constraint.skip_validation
        ) {
          report(
            "constraint-not-valid",
            `constraint ${name} on existing table ${table} must be added NOT VALID (and validated in a later statement), or it scans the table under an exclusive lock`,
          );
        }
        if (
          (constraint.contype === "CONSTR_UNIQUE" || constraint.contype === "CONSTR_PRIMARY") &&
          !constraint.indexname
        ) {
          report(
            "constraint-not-valid",
            `constraint ${name} on existing table ${table} builds its index under an exclusive lock: create a unique index CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX`,
          );
        }
        break;
      }
      case "AT_DropColumn":
        if (!cmd.missing_ok)
          report(
            "if-not-exists",
            `DROP COLUMN ${table}.${column} needs IF EXISTS, so that a retried migration can run again`,
          );
        checkDrop(ctx, { table, column }, report);
        break;
    }
  }
}

function lintDrop(ctx: RuleContext, drop: Node, report: Report) {
  const names = list(drop.objects).map(
    (o) =>
      list(node(o.List).items)
        .map((i) => text(node(i.String).sval))
        .at(-1) ?? "",
  );
  if (drop.removeType === "OBJECT_TABLE") {
    for (const table of names) {
      if (!drop.missing_ok)
        report(
          "if-not-exists",
          `DROP TABLE ${table} needs IF EXISTS, so that a retried migration can run again`,
        );
      checkDrop(ctx, { table }, report);
    }
  } else if (drop.removeType === "OBJECT_INDEX" && !drop.missing_ok) {
    report(
      "if-not-exists",
      `DROP INDEX ${names.join(", ")} needs IF EXISTS, so that a retried migration can run again`,
    );
  }
}

/** N+2: a table or column may go only two releases after the code stopped using it. */
function checkDrop(ctx: RuleContext, target: { table: string; column?: string }, report: Report) {
  const name = deprecatedName(target);
  const what = target.column ? `column ${name}` : `table ${name}`;
  const deprecation = ctx.deprecations.find(
    (d) => d.table === target.table && d.column === target.column,
  );
  if (!deprecation) {
    report(
      "drop-n-plus-2",
      `dropping ${what} breaks the releases still reading it: list it in migrations/deprecations.json and drop it two releases later`,
    );
    return;
  }
  const stopped = ctx.releases.findIndex((r) => r.version === deprecation.stoppedIn);
  const shipsIn = ctx.releases[ctx.fileRelease]?.version ?? "the next release";
  if (stopped < 0) {
    report(
      "drop-n-plus-2",
      `dropping ${what} (deprecated in ${deprecation.stoppedIn}, not cut yet) is allowed from the second release after ${deprecation.stoppedIn}`,
    );
  } else if (ctx.fileRelease < stopped + 2) {
    report(
      "drop-n-plus-2",
      `dropping ${what} in ${shipsIn} is too early: it was deprecated in ${deprecation.stoppedIn}, and may go from the second release after it`,
    );
  }
}

function volatileCall(expr: unknown): string | null {
  const call = node(node(expr).FuncCall);
  if (Object.keys(call).length > 0) {
    const name =
      list(call.funcname)
        .map((n) => text(node(n.String).sval))
        .at(-1) ?? "";
    if (!NON_VOLATILE_DEFAULTS.has(name)) return `${name}()`;
  }
  for (const value of Object.values(node(expr))) {
    if (value && typeof value === "object") {
      const inner = Array.isArray(value)
        ? value.map(volatileCall).find(Boolean)
        : volatileCall(value);
      if (inner) return inner;
    }
  }
  return null;
}

/** 1-based line of the first SQL token at or after `offset` (skipping blank lines and `--` comments). */
function lineOf(sql: string, offset: number): number {
  let i = offset;
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i] as string)) i++;
    if (sql.startsWith("--", i)) {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end + 1;
    } else break;
  }
  return sql.slice(0, i).split("\n").length;
}
