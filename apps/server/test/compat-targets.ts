import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readMigrationFiles } from "@sluice/db";
import { readReleases } from "@sluice/migration-lint";

export const repoRoot = new URL("../../../", import.meta.url).pathname;

/** An older version of Sluice to run next to the current code. */
export type CompatTarget = { label: string; commit: string };

const git = (...args: string[]) =>
  execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();

/**
 * The versions the mixed-version test runs: the last two releases of
 * `releases.json`; while fewer than two exist, also the code just before the
 * latest change to `migrations/*.sql` (the old code a new schema meets),
 * when that code has the `sluice` command.
 */
export function compatTargets(): CompatTarget[] {
  const targets: CompatTarget[] = readReleases(join(repoRoot, "releases.json"))
    .slice(-2)
    .map((r) => ({ label: `release ${r.version}`, commit: r.commit }));
  if (targets.length < 2) {
    const lastSchemaChange = git("log", "-1", "--format=%H", "--", "migrations/*.sql");
    const before = lastSchemaChange ? parentOf(lastSchemaChange) : "";
    const hasCommand =
      before !== "" && git("ls-tree", "--name-only", before, "apps/server/bin/sluice.js") !== "";
    if (hasCommand && !targets.some((t) => t.commit === before)) {
      targets.push({
        label: `commit ${before.slice(0, 12)} (before the latest schema change)`,
        commit: before,
      });
    }
  }
  return targets;
}

/**
 * The versions the rolling test rolls from: the two newest releases that
 * ship an older schema than the current code (so the first new node has
 * migrations to apply during the roll), newest first; the older of them is
 * a two-release jump (0.1.0 today: eight migrations in one step). The
 * compat targets when no release is older than the current schema.
 */
export function rollingTargets(): CompatTarget[] {
  const current = Math.max(0, ...readMigrationFiles().map((f) => f.version));
  const older = readReleases(join(repoRoot, "releases.json"))
    .filter((r) => r.lastMigration < current)
    .slice(-2)
    .reverse()
    .map((r) => ({ label: `release ${r.version}`, commit: r.commit }));
  return older.length > 0 ? older : compatTargets();
}

/** The parent commit, or "" for the first commit. */
function parentOf(commit: string): string {
  return git("log", "-1", "--format=%P", commit).split(" ")[0] ?? "";
}

/**
 * A git worktree of `commit` under `.compat/` with its own `npm ci`, reused
 * when it is already there. Returns its path.
 */
export function prepareWorktree(commit: string): string {
  const path = join(repoRoot, ".compat", commit.slice(0, 12));
  if (!existsSync(join(path, "node_modules", ".package-lock.json"))) {
    if (!existsSync(path)) git("worktree", "add", "--detach", "--force", path, commit);
    execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: path,
      stdio: "inherit",
    });
  }
  return path;
}
