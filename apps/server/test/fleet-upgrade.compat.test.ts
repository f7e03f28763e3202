import { type ChildProcess, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTestDatabase, type TestDatabase } from "@sluice/db/testing";
import { readReleases } from "@sluice/migration-lint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInfo } from "../src/build-info.ts";
import type { UpgradeCheck, UpgradeVerify } from "../src/commands/upgrade.ts";
import { prepareWorktree, repoRoot } from "./compat-targets.ts";
import { runSluice, startNode, stopNode, type Version } from "./processes.ts";

const run = promisify(execFile);
const current: Version = { label: "current", root: repoRoot };
/** The migration that adds the node registry (0011_node_registry.sql). */
const REGISTRY_MIGRATION = 11;

/** Runs `sluice upgrade <sub> --json` of the current code; its exit code and report. */
async function upgrade<T>(env: Record<string, string>, ...args: string[]) {
  const bin = join(repoRoot, "apps/server/bin/sluice.js");
  try {
    const { stdout } = await run(process.execPath, [bin, "upgrade", ...args, "--json"], {
      env: { ...process.env, ...env, LOG_LEVEL: "warn" },
    });
    return { code: 0, report: JSON.parse(stdout) as T };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== "number" || !e.stdout) throw error;
    return { code: e.code, report: JSON.parse(e.stdout) as T };
  }
}

describe("sluice upgrade check and verify", () => {
  let db: TestDatabase;
  let old: Version;
  let backups: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    // The newest release without the registry (0011): the roll into it, where the old
    // nodes are seen only through pg_stat_activity, is what this test is about.
    const latest = readReleases(join(repoRoot, "releases.json"))
      .filter((r) => r.lastMigration < REGISTRY_MIGRATION)
      .at(-1);
    if (!latest) throw new Error("releases.json has no release before the node registry");
    old = { label: `release ${latest.version}`, root: prepareWorktree(latest.commit) };
    db = await createTestDatabase();
    backups = mkdtempSync(join(tmpdir(), "sluice-upgrade-backups-"));
  }, 600_000);
  afterAll(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    await db.drop();
    rmSync(backups, { recursive: true, force: true });
  });

  it("before, during and after a roll from the newest release without the registry to this code", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sluice-upgrade-data-"));
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: "",
      SLUICE_DATA_DIR: dataDir,
      SLUICE_NODE_HEARTBEAT_MS: "200",
      SLUICE_NODE_AGE_OUT_MS: "2000",
      SLUICE_UNREGISTERED_NODE_AGE_OUT_MS: "2000",
    };
    const { release } = buildInfo();
    // The fleet before: two nodes of the old release on its own schema, and its backup.
    await runSluice(old, env, "migrate", "apply");
    const olds = [
      await startNode(old, "all", env, children),
      await startNode(old, "all", env, children),
    ];
    await runSluice(old, env, "backup", "create", join(backups, "before-roll"));

    const before = await upgrade<UpgradeCheck>(env, "check", "--backups", backups);
    expect(before.code).toBe(0);
    expect(before.report.go).toBe(true);
    expect(before.report.target.release).toBe(release);
    expect(before.report.migrations.map((m) => m.name)).toContain("0011_node_registry.sql");
    const registry = before.report.migrations.find((m) => m.name === "0011_node_registry.sql");
    expect(registry?.takes[0]).toBe("CREATE TABLE sluice_nodes: a new table, no lock on live ones");
    expect(registry?.problems).toEqual([]);
    expect(before.report.nodes).toMatchObject([{ registered: false, host: "127.0.0.1" }]);
    expect(before.report.backup?.path).toBe(join(backups, "before-roll", "manifest.json"));
    expect(before.report.backup?.ageHours).toBeLessThan(0.1);
    expect(before.report.warnings.join("\n")).toContain("unregistered node(s) at 127.0.0.1");
    // Nothing was applied by the check.
    expect(await runSluice(current, env, "migrate", "status")).toMatch(
      /^pending\s+0011_node_registry\.sql/m,
    );

    // Mid-roll: one new node (it applies the migrations) next to the old ones.
    const first = await startNode(current, "api", env, children);
    const mid = await upgrade<UpgradeVerify>(env, "verify");
    expect(mid.code).toBe(1);
    expect(mid.report.ok).toBe(false);
    expect(mid.report.problems).toContain(
      "unregistered node(s) at 127.0.0.1 still connected (release 0.3.0 or older)",
    );
    expect(mid.report.nodes.filter((n) => n.registered)).toMatchObject([{ release, ready: true }]);
    const midCheck = await upgrade<UpgradeCheck>(env, "check");
    expect(midCheck.report.migrations).toEqual([]);
    expect(midCheck.code).toBe(0);

    // After: the old nodes are gone, a second new node serves.
    for (const node of olds) await stopNode(node);
    const second = await startNode(
      current,
      "api",
      { ...env, SLUICE_DRAIN_DELAY_MS: "10000" },
      children,
    );
    let after = await upgrade<UpgradeVerify>(env, "verify");
    const deadline = Date.now() + 20_000;
    while (after.code !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      after = await upgrade<UpgradeVerify>(env, "verify");
    }
    expect(after.report.problems).toEqual([]);
    expect(after.code).toBe(0);
    expect(after.report.nodes.map((n) => n.release)).toEqual([release, release]);

    // A draining node is listed as not ready until it has drained.
    const exited = new Promise((resolve) => second.child.once("exit", resolve));
    second.child.kill("SIGTERM");
    const draining = await upgrade<UpgradeVerify>(env, "verify");
    expect(draining.code).toBe(1);
    expect(draining.report.problems.some((p) => p.endsWith("is not ready"))).toBe(true);
    expect(await exited).toBe(0);
    const last = await upgrade<UpgradeVerify>(env, "verify");
    expect(last.report.nodes).toHaveLength(1);
    expect(last.code).toBe(0);
    await stopNode(first);
    rmSync(dataDir, { recursive: true, force: true });
  }, 240_000);
});
