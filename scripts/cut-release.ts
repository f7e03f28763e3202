/**
 * Cuts a release: `npm run release:cut -- 0.2.0`. Records the version, the
 * commit it is cut from (HEAD, which must be clean), the date (UTC) and the
 * last migration it ships in `releases.json`, after the migration lint
 * passes. The N+2 rule counts releases from this file; commit it next.
 */
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readMigrationFiles } from "@sluice/db";
import {
  compareVersions,
  formatFinding,
  lintMigrations,
  type Release,
  readReleases,
} from "@sluice/migration-lint";

const root = fileURLToPath(new URL("../", import.meta.url));
const releasesPath = join(root, "releases.json");

function fail(message: string): never {
  console.error(`cut-release: ${message}`);
  process.exit(1);
}

const version = process.argv[2];
if (!version || !/^\d+\.\d+\.\d+$/.test(version))
  fail("usage: npm run release:cut -- <major.minor.patch>");
const releases: Release[] = existsSync(releasesPath) ? readReleases(releasesPath) : [];
const last = releases.at(-1);
if (last && compareVersions(version, last.version) <= 0)
  fail(`${version} is not after ${last.version}`);
const git = (...args: string[]) =>
  execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
if (git("status", "--porcelain") !== "") fail("the working tree has uncommitted changes");
const findings = await lintMigrations({ repoRoot: root });
if (findings.length > 0)
  fail(`the migration lint fails:\n${findings.map(formatFinding).join("\n")}`);

const release: Release = {
  version,
  commit: git("rev-parse", "HEAD"),
  date: new Date().toISOString().slice(0, 10),
  lastMigration: Math.max(0, ...readMigrationFiles().map((f) => f.version)),
};
writeFileSync(releasesPath, `${JSON.stringify({ releases: [...releases, release] }, null, 2)}\n`);
console.log(
  `recorded ${version} at ${release.commit.slice(0, 12)} (migrations up to ${release.lastMigration}); commit releases.json`,
);
