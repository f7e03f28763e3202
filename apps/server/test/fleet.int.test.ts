import type { ChildProcess } from "node:child_process";
import { listLiveNodes } from "@sluice/db";
import { afterEach, describe, expect, it } from "vitest";
import { buildInfo } from "../src/build-info.ts";
import { createTestUser, organizationToken, userToken } from "./accounts-harness.ts";
import { startTestSluice, type TestSluice, waitFor } from "./harness.ts";
import { sluiceJson, startNode, stopNode, type Version } from "./processes.ts";

const root = new URL("../../../", import.meta.url).pathname;
const current: Version = { label: "current", root };
const FAST = { SLUICE_NODE_HEARTBEAT_MS: "200", SLUICE_NODE_AGE_OUT_MS: "3000" };

describe("the node registry", () => {
  let t: TestSluice | undefined;
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    await t?.stop();
    t = undefined;
  });

  it("lists live nodes with release, commit and roles; a stale or killed node ages out; a drained one leaves", async () => {
    t = await startTestSluice({ redis: false, env: FAST });
    const env = { DATABASE_URL: t.config.databaseUrl as string, REDIS_URL: "", ...FAST };
    const { release, commit } = buildInfo();
    expect(release).toMatch(/^\d+\.\d+\.\d+(-dev)?$/);
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    // A node that died an hour ago, as a crashed process leaves its row.
    await t.sql.query(
      `INSERT INTO sluice_nodes (id, host, release, schema_version, ready, started_at, heartbeat_at)
       VALUES ('ghost:1:dead', 'ghost', '0.4.0', 11, true, now() - interval '2 hours', now() - interval '1 hour')`,
    );
    const worker = await startNode(current, "api", env, children);
    const listed = (await sluiceJson(current, env, "fleet")) as {
      id: string;
      release: string;
      commit: string;
      roles: string[];
      ready: boolean;
      registered: boolean;
      schemaVersion: number;
    }[];
    expect(listed.map((n) => n.id)).not.toContain("ghost:1:dead");
    expect(listed).toHaveLength(2);
    expect(listed.map((n) => n.roles.join(",")).sort()).toEqual(
      ["api", "ingest,api,worker,alerts"].sort(),
    );
    for (const node of listed) {
      expect(node).toMatchObject({ release, commit, ready: true, registered: true });
      expect(node.schemaVersion).toBeGreaterThanOrEqual(11);
    }
    // The live nodes' heartbeats delete the dead node's row.
    await waitFor(
      async () =>
        (await t?.sql.query("SELECT 1 FROM sluice_nodes WHERE id = 'ghost:1:dead'"))?.rowCount ===
        0,
      5_000,
      "the stale row to be pruned",
    );

    const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    expect(metrics).toContain(
      `sluice_build_info{release="${release}",commit="${commit}",role="api"} 1`,
    );

    // SIGKILL: no drain, the row stays until it ages out (3 s here; more
    // than heartbeats need on a loaded machine).
    worker.child.kill("SIGKILL");
    const killedAt = Date.now();
    await waitFor(
      async () => (await listLiveNodes(t?.sql as never, 3000, 3000)).length === 1,
      10_000,
      "the killed node to age out",
    );
    expect(Date.now() - killedAt).toBeGreaterThan(2000);

    // SIGTERM: the node leaves the registry as it drains.
    const drained = await startNode(current, "api", env, children);
    expect((await listLiveNodes(t.sql, 60_000, 60_000)).length).toBe(2);
    await stopNode(drained);
    const after = await listLiveNodes(t.sql, 60_000, 60_000);
    expect(after.map((n) => n.id)).toEqual([t.services.instanceId]);
  }, 120_000);

  it("GET /api/0/internal/fleet/ answers instance-admin tokens, not organization or user tokens (superuser sessions: web-fleet.int.test.ts)", async () => {
    t = await startTestSluice({ redis: false, env: FAST });
    const get = (token: string) =>
      fetch(`${t?.url}/api/0/internal/fleet/`, { headers: { Authorization: `Bearer ${token}` } });
    const admin = await get(t.token);
    expect(admin.status).toBe(200);
    const nodes = (await admin.json()) as { id: string; release: string; lastHeartbeat: string }[];
    expect(nodes.map((n) => n.id)).toEqual([t.services.instanceId]);
    expect(nodes[0]?.release).toBe(buildInfo().release);
    expect(Number.isNaN(Date.parse(nodes[0]?.lastHeartbeat ?? ""))).toBe(false);

    // An organization's own token and its owner are not the instance's admins.
    const orgToken = await organizationToken(t, "sluice");
    await createTestUser(t, "owner@example.com", "sluice", "owner");
    const owner = await userToken(t, "owner@example.com", ["org:read", "org:write", "org:admin"]);
    for (const token of [orgToken, owner]) {
      const refused = await get(token);
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual({
        detail: "You do not have permission to perform this action.",
      });
    }
    expect((await fetch(`${t.url}/api/0/internal/fleet/`)).status).toBe(401);
  });
});
