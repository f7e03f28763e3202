import { type ChildProcess, execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import {
  createTestDatabase,
  migrateTestDatabase,
  openTestPool,
  type TestDatabase,
} from "@sluice/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CompatTarget, compatTargets, prepareWorktree, repoRoot } from "./compat-targets.ts";
import { deleteQueueKeys, REDIS_URL, waitFor } from "./harness.ts";
import {
  createDefaultProject,
  sluiceJson,
  startNode,
  stopNode,
  type Version,
} from "./processes.ts";

const run = promisify(execFile);
const nodeClient = join(repoRoot, "apps/server/test/clients/node-client.mjs");
/** node-client.mjs sends 13 events: 5 of one error, 2 at two sites, 3 messages, 2 fingerprinted, 1 with an attachment. */
const EVENTS_PER_CLIENT = 13;

async function sendThrough(port: number, dsn: string) {
  const url = new URL(dsn);
  url.host = `127.0.0.1:${port}`;
  await run(process.execPath, [nodeClient, url.toString()], { timeout: 30_000 });
}

/** Times seen of each issue, by title (one entry per issue, so a split group shows). */
async function issueCounts(port: number, token: string): Promise<Record<string, number[]>> {
  const response = await fetch(
    `http://127.0.0.1:${port}/api/0/projects/sluice/default/issues/?query=`,
    {
      headers: { Authorization: `Bearer ${token}` },
    },
  );
  expect(response.status).toBe(200);
  const counts: Record<string, number[]> = {};
  for (const issue of (await response.json()) as { title: string; count: string }[]) {
    counts[issue.title] = [...(counts[issue.title] ?? []), Number(issue.count)].sort();
  }
  return counts;
}

const current: Version = { label: "current", root: repoRoot };
const targets: CompatTarget[] = compatTargets();

describe.each(targets)("$label next to the current code", (target) => {
  let old: Version;
  const children: ChildProcess[] = [];
  let dataDir: string;
  beforeAll(() => {
    old = { label: target.label, root: prepareWorktree(target.commit) };
    dataDir = mkdtempSync(join(tmpdir(), "sluice-compat-"));
    chmodSync(dataDir, 0o755);
  }, 600_000);
  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe("on one database migrated by the current code", () => {
    let db: TestDatabase;
    const prefix = `sluice-compat-${Date.now()}`;
    beforeAll(async () => {
      db = await createTestDatabase();
      await migrateTestDatabase(db.url);
    });
    afterAll(async () => {
      await deleteQueueKeys(prefix);
      await db?.drop();
    });

    it("stores every event once, groups it, and serves it through both versions' APIs", async () => {
      const env = {
        DATABASE_URL: db.url,
        REDIS_URL,
        SLUICE_QUEUE_PREFIX: prefix,
        SLUICE_DATA_DIR: dataDir,
      };
      const dsn = await createDefaultProject(current, env);
      const { token } = await sluiceJson(current, env, "tokens", "create");
      const [oldIngest, newIngest] = await Promise.all([
        startNode(old, "ingest,api", env, children),
        startNode(current, "ingest,api", env, children),
        startNode(old, "worker", env, children),
        startNode(current, "worker", env, children),
      ]);
      await sendThrough(oldIngest?.port as number, dsn);
      await sendThrough(newIngest?.port as number, dsn);

      const sql = openTestPool(db.url);
      try {
        await waitFor(
          async () => {
            const r = await sql.query(
              "SELECT count(*)::int AS n, count(*) FILTER (WHERE issue_id IS NULL)::int AS open FROM events",
            );
            return r.rows[0].n === 2 * EVENTS_PER_CLIENT && r.rows[0].open === 0;
          },
          30_000,
          "every event stored and grouped",
        );
        const ids = await sql.query(
          "SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM event_ids",
        );
        expect(ids.rows[0]).toEqual({ n: 2 * EVENTS_PER_CLIENT, d: 2 * EVENTS_PER_CLIENT });
      } finally {
        await sql.end();
      }
      for (const port of [oldIngest?.port, newIngest?.port] as number[]) {
        const counts = await issueCounts(port, token);
        expect(counts["Error: same error every time"]).toEqual([10]);
        expect(counts["Error: thrown at two sites"]).toEqual([2, 2]);
      }
    });
  });

  it("upgrades a database populated by it to the current schema in one step, losing nothing", async () => {
    const db = await createTestDatabase();
    const prefix = `sluice-upgrade-${Date.now()}`;
    try {
      const env = {
        DATABASE_URL: db.url,
        REDIS_URL,
        SLUICE_QUEUE_PREFIX: prefix,
        SLUICE_DATA_DIR: dataDir,
      };
      const oldNode = await startNode(old, "all", env, children);
      const dsn = await createDefaultProject(old, env);
      const { token } = await sluiceJson(old, env, "tokens", "create");
      await sendThrough(oldNode.port, dsn);
      // Every event grouped before the snapshot: one issue's count reaching 5
      // said nothing of the others (CI once caught the second site mid-way).
      const sql = openTestPool(db.url);
      try {
        await waitFor(
          async () => {
            const r = await sql.query(
              "SELECT count(*)::int AS n, count(*) FILTER (WHERE processed_at IS NULL)::int AS open FROM events",
            );
            return r.rows[0].n === EVENTS_PER_CLIENT && r.rows[0].open === 0;
          },
          30_000,
          "the old release to group its events",
        );
      } finally {
        await sql.end();
      }
      const before = await issueCounts(oldNode.port, token);
      expect(before["Error: same error every time"]).toEqual([5]);
      await stopNode(oldNode);

      const newNode = await startNode(current, "api", env, children);
      expect(await issueCounts(newNode.port, token)).toEqual(before);
      const [issue] = (await (
        await fetch(
          `http://127.0.0.1:${newNode.port}/api/0/projects/sluice/default/issues/?query=`,
          { headers: { Authorization: `Bearer ${token}` } },
        )
      ).json()) as { id: string }[];
      const latest = await fetch(
        `http://127.0.0.1:${newNode.port}/api/0/issues/${issue?.id}/events/latest/`,
        {
          headers: { Authorization: `Bearer ${token}` },
        },
      );
      expect(latest.status).toBe(200);
      await stopNode(newNode);
    } finally {
      await deleteQueueKeys(prefix);
      await db.drop();
    }
  });
});
