import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Queryable } from "./database.ts";
import type { MigrationFile } from "./migration-files.ts";
import { type FleetNode, listLiveNodes } from "./node-registry.ts";
import { parseSql } from "./sql-parser.ts";

/**
 * Compares release versions `a.b.c`, `a.b.c-dev` (the code on its way to
 * a.b.c: before a.b.c, after every a.b.(c-1)) and `a.b.c or older` (an
 * unregistered node; compared as a.b.c). Negative when `a` is older.
 */
export function compareReleases(a: string, b: string): number {
  const parse = (v: string) => {
    const match = /^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?/.exec(v.trim());
    if (!match) return { parts: [0, 0, 0], pre: true };
    return { parts: [Number(match[1]), Number(match[2]), Number(match[3])], pre: !!match[4] };
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa.parts[i] ?? 0) - (pb.parts[i] ?? 0);
    if (d !== 0) return d;
  }
  return pa.pre === pb.pre ? 0 : pa.pre ? -1 : 1;
}

/** One entry of `migrations/deprecations.json` (packages/migration-lint checks its shape). */
export type Deprecation = { table: string; column?: string; stoppedIn: string; reason?: string };

/** `deprecations.json` of a migrations directory; none when the file is absent. */
export function readDeprecationsFile(dir: string): Deprecation[] {
  const path = join(dir, "deprecations.json");
  if (!existsSync(path)) return [];
  const parsed = JSON.parse(readFileSync(path, "utf8")) as { deprecations?: Deprecation[] };
  return parsed.deprecations ?? [];
}

/**
 * What one statement removes or narrows, which a node of an older release
 * may still read or write: a dropped table or column (due under N+2 once
 * deprecations.json lists it), a renamed one, a changed column type, a new
 * NOT NULL on an existing column (the last three the lint refuses; a file
 * that got past it is gated all the same).
 */
export type GatedChange = {
  kind: "drop" | "rename" | "type change" | "set not null";
  table: string;
  column?: string;
};

type Node = Record<string, unknown>;
const node = (v: unknown): Node => (v !== null && typeof v === "object" ? (v as Node) : {});
const list = (v: unknown): Node[] => (Array.isArray(v) ? v.map(node) : []);
const text = (v: unknown): string => (typeof v === "string" ? v : "");

/**
 * The gated changes of a migration file, read with the real Postgres
 * parser (`loadSqlParser` first); empty for an additive file, which never
 * waits on the gate.
 */
export function gatedChanges(file: Pick<MigrationFile, "sql">): GatedChange[] {
  const changes: GatedChange[] = [];
  for (const raw of parseSql(file.sql).stmts ?? []) {
    const stmt = node(raw.stmt);
    const [kind] = Object.keys(stmt);
    const body = node(stmt[kind ?? ""]);
    if (kind === "DropStmt" && body.removeType === "OBJECT_TABLE") {
      for (const o of list(body.objects)) {
        const table =
          list(node(o.List).items)
            .map((i) => text(node(i.String).sval))
            .at(-1) ?? "";
        changes.push({ kind: "drop", table });
      }
    } else if (kind === "RenameStmt") {
      const table = text(node(body.relation).relname);
      if (body.renameType === "OBJECT_TABLE") changes.push({ kind: "rename", table });
      if (body.renameType === "OBJECT_COLUMN")
        changes.push({ kind: "rename", table, column: text(body.subname) });
    } else if (kind === "AlterTableStmt") {
      const table = text(node(body.relation).relname);
      for (const cmd of list(body.cmds).map((c) => node(c.AlterTableCmd))) {
        const column = text(cmd.name);
        if (cmd.subtype === "AT_DropColumn") changes.push({ kind: "drop", table, column });
        if (cmd.subtype === "AT_AlterColumnType")
          changes.push({ kind: "type change", table, column });
        if (cmd.subtype === "AT_SetNotNull") changes.push({ kind: "set not null", table, column });
      }
    }
  }
  return changes;
}

/** The statements of `sql` as the Postgres parser reads them (`loadSqlParser` first). */
export function parseStatements(
  sql: string,
): { stmt?: Record<string, unknown>; stmt_location?: number }[] {
  return (parseSql(sql).stmts ?? []) as {
    stmt?: Record<string, unknown>;
    stmt_location?: number;
  }[];
}

/** `events.payload` or `leases`. */
export function changedName(c: { table: string; column?: string }): string {
  return c.column ? `${c.table}.${c.column}` : c.table;
}

/** The highest migration a node of this code needs: gated files are not needed by the code. */
export function neededSchemaVersion(files: MigrationFile[]): number {
  return Math.max(0, ...files.filter((f) => gatedChanges(f).length === 0).map((f) => f.version));
}

/** What `applyMigrations` needs to gate files that remove or narrow something. */
export type MigrationGate = {
  /** `migrations/deprecations.json`: from which release the code stopped using what. */
  deprecations: Deprecation[];
  /** This code's release: what a gated change not in the deprecations waits for. */
  release: string;
  /** Registry rows older than these are dead nodes (ms). */
  ageOutMs: number;
  unregisteredAgeOutMs: number;
};

/** A gated file that was not applied, with the live nodes that still read what it removes. */
export type GateRefusal = {
  file: string;
  /** The oldest release that no longer reads what the file removes. */
  oldestRelease: string;
  blockers: FleetNode[];
  message: string;
};

/**
 * Whether `file` may be applied now: null for an additive file (no query
 * is made) or a gated one no live node blocks; else the refusal naming
 * each blocking node (id, release, host). A node blocks when its release
 * is older than the release that stopped using a changed table or column
 * (`stoppedIn` of its deprecation; this code's release when none is
 * listed), and every unregistered node blocks: its release is unknown.
 */
export async function checkGate(
  db: Queryable,
  file: MigrationFile,
  gate: MigrationGate,
): Promise<GateRefusal | null> {
  const changes = gatedChanges(file);
  if (changes.length === 0) return null;
  const oldestRelease = requiredRelease(changes, gate);
  const live = await listLiveNodes(db, gate.ageOutMs, gate.unregisteredAgeOutMs);
  const blockers = live.filter(
    (n) => !n.registered || compareReleases(n.release, oldestRelease) < 0,
  );
  if (blockers.length === 0) return null;
  const what = changes.map((c) => `${c.kind} ${changedName(c)}`).join(", ");
  const names = blockers
    .map((n) =>
      n.registered
        ? `${n.id} (release ${n.release}, host ${n.host})`
        : `unregistered node(s) at ${n.host} (release ${n.release}, seen ${n.heartbeatAt.toISOString()})`,
    )
    .join("; ");
  return {
    file: file.name,
    oldestRelease,
    blockers,
    message: `migration ${file.name} (${what}) waits: live nodes older than release ${oldestRelease} still read it: ${names}. Stop or upgrade them, then run "sluice migrate apply" (or start a node)`,
  };
}

/** The newest of the releases that stopped using each change. */
export function requiredRelease(changes: GatedChange[], gate: MigrationGate): string {
  let oldest = "0.0.0";
  for (const change of changes) {
    const d = gate.deprecations.find((x) => x.table === change.table && x.column === change.column);
    const release = d?.stoppedIn ?? gate.release;
    if (compareReleases(release, oldest) > 0) oldest = release;
  }
  return oldest;
}

/**
 * Records, before a gated file is applied, that nodes older than
 * `oldestRelease` may no longer start (`sluice_schema_floor`).
 */
export async function recordSchemaFloor(
  db: Queryable,
  migration: number,
  oldestRelease: string,
  reason: string,
): Promise<void> {
  await db.query(
    `INSERT INTO sluice_schema_floor (migration, oldest_release, reason) VALUES ($1, $2, $3)
     ON CONFLICT (migration) DO UPDATE SET oldest_release = excluded.oldest_release, reason = excluded.reason`,
    [migration, oldestRelease, reason],
  );
}

/** Takes back a floor recorded for a file that was then refused after all. */
export async function forgetSchemaFloor(db: Queryable, migration: number): Promise<void> {
  await db.query("DELETE FROM sluice_schema_floor WHERE migration = $1", [migration]);
}
