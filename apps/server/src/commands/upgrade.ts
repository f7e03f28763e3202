import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  changedName,
  checkGate,
  compareReleases,
  type FleetNode,
  gatedChanges,
  loadSqlParser,
  type MigrationFile,
  migrationsDir,
  neededSchemaVersion,
  parseStatements,
  readDeprecationsFile,
  readMigrationFiles,
  readMigrationState,
  trafficStats,
} from "@sluice/db";
import { eventJobsDepth } from "@sluice/queue";
import { buildInfo, type CutRelease, knownReleases } from "../build-info.ts";
import { liveNodes, type SerializedNode, serializeNode } from "../fleet-nodes.ts";
import type { Services } from "../services.ts";

/** One pending migration as the preflight sees it. */
type PendingMigration = {
  name: string;
  /** `one transaction` or `statement by statement` (a `-- sluice:no-transaction` file). */
  mode: string;
  /** What each statement takes: its lock and on which table. */
  takes: string[];
  /** Rules of the migration lint it breaks (a rewrite, a long lock): each a no-go. */
  problems: string[];
  /** What it removes or narrows; the version gate holds it while `blockers` live. */
  gated: string[];
  blockers: string[];
};

/** `sluice upgrade check`: go when `noGo` is empty. */
export type UpgradeCheck = {
  go: boolean;
  target: { release: string; commit: string | null; schemaVersion: number };
  migrations: PendingMigration[];
  nodes: (SerializedNode & { withinTwoReleases: boolean | null })[];
  backup: { path: string; snapshotAt: string; ageHours: number; schemaVersion: number } | null;
  queue: { kind: string; depth: number | null; unprocessedEvents: number };
  noGo: string[];
  warnings: string[];
};

export type CheckOptions = {
  /** A backup directory, or a directory of them, whose newest `manifest.json` is reported. */
  backupsDir: string | null;
  /** Queued jobs or unprocessed events above which the roll should wait. */
  maxBacklog: number;
};

/**
 * The preflight before rolling to this code's release (README "Upgrading"):
 * the pending migrations and what each takes (the migration lint's rules:
 * none may rewrite a table or lock it for long), the live nodes and whether
 * this release is within two releases (N+2) of each, the newest backup, and
 * the queue backlog. Read-only.
 */
export async function upgradeCheck(
  services: Services,
  options: CheckOptions,
): Promise<UpgradeCheck> {
  const { release, commit } = buildInfo();
  await loadSqlParser();
  const files = readMigrationFiles();
  const releases = knownReleases();
  const noGo: string[] = [];
  const warnings: string[] = [];

  const state = await readMigrationState(services.db.pool, files);
  if (state.edited.length > 0)
    noGo.push(
      `applied migrations were edited since: ${state.edited.map((f) => f.name).join(", ")}`,
    );
  const migrations = await describePending(services, files, state.pending, release);
  for (const m of migrations) {
    for (const p of m.problems) noGo.push(`${m.name}: ${p}`);
    if (m.blockers.length > 0)
      warnings.push(
        `${m.name} (${m.gated.join(", ")}) will wait for the version gate while these live: ${m.blockers.join("; ")}`,
      );
  }

  const live = await liveNodes(services);
  const nodes = live.map((n) => {
    const within = n.registered ? withinTwo(n.release, release, releases) : null;
    if (within === false)
      noGo.push(
        `node ${n.id} (host ${n.host}) runs ${n.release}, more than two releases from ${release}: roll through the releases between first`,
      );
    if (n.registered === false)
      warnings.push(
        `unregistered node(s) at ${n.host} run a release before the registry (${n.release}): ${release} is within two releases of ${releaseTwoBefore(release, releases)} and later only; make sure none is older`,
      );
    return { ...serializeNode(n), withinTwoReleases: within };
  });
  if (live.length === 0) warnings.push("no live node is registered (a first start?)");

  const backup = options.backupsDir ? newestBackup(options.backupsDir) : null;
  if (!options.backupsDir)
    warnings.push(
      "no backups checked (--backups <dir>): take one with sluice backup create before the roll",
    );
  else if (!backup)
    warnings.push(`no backup manifest under ${options.backupsDir}: take one before the roll`);
  else if (backup.ageHours > 24)
    warnings.push(
      `the newest backup is ${backup.ageHours.toFixed(1)} hours old: take a fresh one before the roll`,
    );

  const depth = services.queue.kind === "bullmq" ? await eventJobsDepth(services.queue) : null;
  const stats = await trafficStats(services.db.pool, 5);
  if (depth !== null && depth > options.maxBacklog)
    noGo.push(
      `the queue holds ${depth} event jobs (bound ${options.maxBacklog}): let the workers catch up first`,
    );
  if (stats.unprocessed > options.maxBacklog)
    noGo.push(`${stats.unprocessed} events are not processed yet (bound ${options.maxBacklog})`);

  return {
    go: noGo.length === 0,
    target: { release, commit, schemaVersion: neededSchemaVersion(files) },
    migrations,
    nodes,
    backup,
    queue: { kind: services.queue.kind, depth, unprocessedEvents: stats.unprocessed },
    noGo,
    warnings,
  };
}

/** `sluice upgrade verify`: healthy when `problems` is empty. */
export type UpgradeVerify = {
  ok: boolean;
  target: { release: string; commit: string | null; schemaVersion: number };
  nodes: SerializedNode[];
  traffic: {
    windowMinutes: number;
    eventsPerMinute: number;
    baselineEventsPerMinute: number;
    failuresPerMinute: number;
    baselineFailuresPerMinute: number;
    unprocessedEvents: number;
    oldestUnprocessedSeconds: number;
    queueDepth: number | null;
  };
  problems: string[];
};

export type VerifyOptions = { windowMinutes: number; maxLagSeconds: number };

/**
 * After a roll to this code's release: every live node runs it (release and
 * commit), is ready and needs this schema; no unregistered node is left;
 * every migration is applied; the event rate of the last `windowMinutes` is
 * at least half that of the hour before (when the hour had 60 events or
 * more), processing failures are at most twice theirs plus one a minute;
 * the oldest unprocessed event is younger than `maxLagSeconds`.
 */
export async function upgradeVerify(
  services: Services,
  options: VerifyOptions,
): Promise<UpgradeVerify> {
  const { release, commit } = buildInfo();
  await loadSqlParser();
  const files = readMigrationFiles();
  const schemaVersion = neededSchemaVersion(files);
  const problems: string[] = [];
  const live = await liveNodes(services);
  const registered = live.filter((n) => n.registered);
  if (registered.length === 0) problems.push("no live node is registered");
  for (const n of live) problems.push(...nodeProblems(n, release, commit, schemaVersion));

  const state = await readMigrationState(services.db.pool, files);
  if (state.pending.length > 0)
    problems.push(
      `the schema is not at ${release}'s version: ${state.pending.map((f) => f.name).join(", ")} not applied (run sluice migrate apply)`,
    );
  if (state.edited.length > 0)
    problems.push(`applied migrations were edited: ${state.edited.map((f) => f.name).join(", ")}`);

  const w = options.windowMinutes;
  const stats = await trafficStats(services.db.pool, w);
  const rate = stats.recentEvents / w;
  const baseline = stats.baselineEvents / 60;
  const failures = stats.recentFailures / w;
  const baselineFailures = stats.baselineFailures / 60;
  if (stats.baselineEvents >= 60 && rate < baseline / 2)
    problems.push(
      `the event rate fell: ${rate.toFixed(1)}/min in the last ${w} min against ${baseline.toFixed(1)}/min in the hour before`,
    );
  if (failures > 2 * baselineFailures + 1)
    problems.push(
      `processing failures rose: ${failures.toFixed(1)}/min in the last ${w} min against ${baselineFailures.toFixed(1)}/min in the hour before`,
    );
  if (stats.oldestUnprocessedSeconds > options.maxLagSeconds)
    problems.push(
      `the oldest unprocessed event is ${Math.round(stats.oldestUnprocessedSeconds)} s old (bound ${options.maxLagSeconds} s; ${stats.unprocessed} waiting)`,
    );
  const queueDepth = services.queue.kind === "bullmq" ? await eventJobsDepth(services.queue) : null;
  return {
    ok: problems.length === 0,
    target: { release, commit, schemaVersion },
    nodes: live.map(serializeNode),
    traffic: {
      windowMinutes: w,
      eventsPerMinute: rate,
      baselineEventsPerMinute: baseline,
      failuresPerMinute: failures,
      baselineFailuresPerMinute: baselineFailures,
      unprocessedEvents: stats.unprocessed,
      oldestUnprocessedSeconds: stats.oldestUnprocessedSeconds,
      queueDepth,
    },
    problems,
  };
}

function nodeProblems(
  n: FleetNode,
  release: string,
  commit: string | null,
  schemaVersion: number,
): string[] {
  if (!n.registered)
    return [`unregistered node(s) at ${n.host} still connected (release ${n.release})`];
  const problems: string[] = [];
  const who = `node ${n.id} (host ${n.host})`;
  if (n.release !== release) problems.push(`${who} runs ${n.release}, not ${release}`);
  else if (commit && n.commit && n.commit !== commit)
    problems.push(`${who} runs commit ${n.commit.slice(0, 12)}, not ${commit.slice(0, 12)}`);
  if (!n.ready) problems.push(`${who} is not ready`);
  if (n.release === release && n.schemaVersion !== schemaVersion)
    problems.push(`${who} needs schema ${n.schemaVersion}, not ${schemaVersion}`);
  return problems;
}

/** Where a release stands among the cut ones: its index; a `-dev` one counts as the next. */
function releaseIndex(version: string, releases: CutRelease[]): number {
  const exact = releases.findIndex((r) => r.version === version);
  return exact >= 0
    ? exact
    : releases.filter((r) => compareReleases(r.version, version) < 0).length;
}

/** N+2: the target and the node are at most two releases apart (either way: a roll back too). */
function withinTwo(nodeRelease: string, target: string, releases: CutRelease[]): boolean {
  return Math.abs(releaseIndex(target, releases) - releaseIndex(nodeRelease, releases)) <= 2;
}

function releaseTwoBefore(target: string, releases: CutRelease[]): string {
  const index = releaseIndex(target, releases) - 2;
  return releases[Math.max(0, index)]?.version ?? target;
}

/** The lint rules that mean a long lock or a rewrite of a live table. */
const BLOCKING_RULES = new Set([
  "no-volatile-default",
  "no-type-change",
  "no-set-not-null",
  "constraint-not-valid",
  "index-concurrently",
  "concurrently-outside-transaction",
  "not-null-needs-default",
  "no-rename",
]);

async function describePending(
  services: Services,
  files: MigrationFile[],
  pending: MigrationFile[],
  release: string,
): Promise<PendingMigration[]> {
  if (pending.length === 0) return [];
  const { lintStatements } = await import("@sluice/migration-lint");
  const deprecations = readDeprecationsFile(migrationsDir);
  const gate = {
    deprecations,
    release,
    ageOutMs: services.config.fleet.ageOutMs,
    unregisteredAgeOutMs: services.config.fleet.unregisteredAgeOutMs,
  };
  const releases = knownReleases().map((r) => ({ date: "1970-01-01", ...r }));
  const existingTables = new Set<string>();
  const described: PendingMigration[] = [];
  for (const file of files) {
    const statements = parseStatements(file.sql);
    const result = lintStatements(
      {
        file: file.name,
        sql: file.sql,
        noTransaction: file.noTransaction,
        existingTables,
        fileRelease: releases.length,
        releases,
        deprecations: deprecations.map((d) => ({ reason: "", ...d })),
      },
      statements,
    );
    if (pending.includes(file)) {
      const refusal = await checkGate(services.db.pool, file, gate);
      described.push({
        name: file.name,
        mode: file.noTransaction ? "statement by statement" : "one transaction",
        takes: statements.map((s) => takes(s.stmt as Record<string, unknown>, existingTables)),
        problems: result.findings.filter((f) => BLOCKING_RULES.has(f.rule)).map((f) => f.message),
        gated: gatedChanges(file).map((c) => `${c.kind} ${changedName(c)}`),
        blockers: (refusal?.blockers ?? []).map(
          (n) => `${n.id} (release ${n.release}, host ${n.host})`,
        ),
      });
    }
    for (const table of result.createdTables) existingTables.add(table);
  }
  return described;
}

/** The lock one statement takes, in words (Postgres' lock levels, docs "Explicit Locking"). */
function takes(stmt: Record<string, unknown>, existing: Set<string>): string {
  const [kind] = Object.keys(stmt ?? {});
  const body = (stmt?.[kind ?? ""] ?? {}) as Record<string, unknown>;
  const relation = (body.relation ?? {}) as { relname?: string };
  const table = relation.relname ?? "";
  switch (kind) {
    case "CreateStmt":
      return existing.has(table)
        ? `CREATE TABLE IF NOT EXISTS ${table}: exists already, nothing`
        : `CREATE TABLE ${table}: a new table, no lock on live ones`;
    case "IndexStmt":
      return body.concurrent
        ? `CREATE INDEX CONCURRENTLY ${String(body.idxname)} ON ${table}: SHARE UPDATE EXCLUSIVE, writes go on`
        : existing.has(table)
          ? `CREATE INDEX ${String(body.idxname)} ON ${table}: SHARE, blocks writes while it builds`
          : `CREATE INDEX ${String(body.idxname)} ON new table ${table}: nothing live`;
    case "AlterTableStmt":
      return `ALTER TABLE ${table}: ACCESS EXCLUSIVE for a catalog change, waiting at most lock_timeout (SLUICE_MIGRATION_LOCK_TIMEOUT_MS)`;
    case "DropStmt":
      return "DROP: ACCESS EXCLUSIVE for a catalog change (held by the version gate while older nodes live)";
    case "AlterEnumStmt":
      return "ALTER TYPE ... ADD VALUE: a catalog change";
    default:
      return `${(kind ?? "statement").replace(/Stmt$/, "")}`;
  }
}

/** The newest `manifest.json` in `dir` or one directory below it. */
function newestBackup(dir: string): UpgradeCheck["backup"] {
  const candidates = [join(dir, "manifest.json")];
  if (existsSync(dir) && statSync(dir).isDirectory())
    for (const entry of readdirSync(dir)) candidates.push(join(dir, entry, "manifest.json"));
  let best: UpgradeCheck["backup"] = null;
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    try {
      const m = JSON.parse(readFileSync(path, "utf8")) as {
        snapshotAt?: string;
        schemaVersion?: number;
      };
      const at = Date.parse(m.snapshotAt ?? "");
      if (Number.isNaN(at)) continue;
      if (!best || at > Date.parse(best.snapshotAt))
        best = {
          path,
          snapshotAt: new Date(at).toISOString(),
          ageHours: (Date.now() - at) / 3_600_000,
          schemaVersion: Number(m.schemaVersion ?? 0),
        };
    } catch {
      // An unreadable manifest is not a backup to count on.
    }
  }
  return best;
}
