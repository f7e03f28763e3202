import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { request } from "node:http";
import { connect, createServer } from "node:net";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { api, countRows, startTestSluice, type TestSluice } from "./harness.ts";

const run = promisify(execFile);
const clients = new URL("./clients/", import.meta.url).pathname;
const hex = () => randomUUID().replaceAll("-", "");

function eventEnvelope(id = hex()) {
  return `${JSON.stringify({ event_id: id })}\n${JSON.stringify({ type: "event" })}\n${JSON.stringify({ message: "burst" })}\n`;
}

async function post(url: string, projectId: number, key: string, body: string) {
  const r = await fetch(`${url}/api/${projectId}/envelope/?sentry_key=${key}&sentry_version=7`, {
    method: "POST",
    body,
  });
  await r.arrayBuffer();
  return r;
}

/** Sends `total` envelopes from `clients` concurrent loops, spread over `urls`; returns the statuses. */
async function burst(urls: string[], projectId: number, key: string, total: number, clients = 30) {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (next < total) {
        next++;
        const url = urls[(c + next) % urls.length] as string;
        try {
          statuses.push((await post(url, projectId, key, eventEnvelope())).status);
        } catch {
          statuses.push(0);
        }
      }
    }),
  );
  return statuses;
}

async function metric(t: TestSluice, name: string): Promise<number> {
  const text = await (await fetch(`${t.metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").pop()) : 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of this test's own on a free port (the shared one is never stopped). */
async function startOwnRedis(
  port?: number,
): Promise<{ url: string; port: number; process: ChildProcess }> {
  port ??= await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (up) return { url: `redis://127.0.0.1:${port}`, port, process: child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not start");
}

describe("limits shared by a fleet", () => {
  const started: TestSluice[] = [];
  afterAll(async () => {
    for (const t of started.reverse()) await t.stop();
  });

  it("three ingest nodes on one Redis accept the key's limit within 5 % under a burst from many clients", async () => {
    const prefix = `sluice-test-fleet-${randomBytes(4).toString("hex")}`;
    const first = await startTestSluice({ roles: "ingest,api", queuePrefix: prefix });
    started.push(first);
    const databaseUrl = first.config.databaseUrl as string;
    for (let i = 0; i < 2; i++) {
      started.push(await startTestSluice({ roles: "ingest", databaseUrl, queuePrefix: prefix }));
    }
    const response = await api(first, `/api/0/projects/sluice/default/keys/${first.publicKey}/`, {
      method: "PUT",
      body: JSON.stringify({ rateLimit: { window: 3600, count: 300 } }),
    });
    expect(response.status).toBe(200);
    const statuses = await burst(
      started.map((t) => t.url),
      first.projectId,
      first.publicKey,
      900,
      45,
    );
    const accepted = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(Math.abs(accepted - 300)).toBeLessThanOrEqual(15);
    expect(await countRows(first.sql, "events")).toBe(accepted);
    // Batching: fewer round trips than checks on at least one node.
    const text = await (await fetch(`${first.metricsUrl}/metrics`)).text();
    const count = Number(/sluice_quota_round_trip_checks_count (\d+)/.exec(text)?.[1]);
    const sum = Number(/sluice_quota_round_trip_checks_sum (\d+)/.exec(text)?.[1]);
    expect(count).toBeGreaterThan(0);
    expect(sum).toBeGreaterThan(count);
  }, 120_000);

  it("keeps accepting with no 5xx when its Redis stops mid-burst, and counts the failures", async () => {
    let redis = await startOwnRedis();
    try {
      const t = await startTestSluice({ roles: "ingest", env: { REDIS_URL: redis.url } });
      started.push(t);
      await t.sql.query(
        "UPDATE project_keys SET rate_limit_count = 100000, rate_limit_window = 3600",
      );
      const running = burst([t.url], t.projectId, t.publicKey, 600, 20);
      await new Promise((r) => setTimeout(r, 300));
      redis.process.kill("SIGKILL");
      const statuses = await running;
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(await metric(t, "sluice_quota_store_failures_total")).toBeGreaterThan(0);
      expect(await countRows(t.sql, "events")).toBe(600);
      // Back on the same port, so the node's queue can close cleanly at the end.
      redis = await startOwnRedis(redis.port);
      started.splice(started.indexOf(t), 1);
      await t.stop();
    } finally {
      redis.process.kill("SIGKILL");
    }
  }, 120_000);

  it("answers 503 with Retry-After before reading the body when commits fall behind, stays ready, and loses nothing it acknowledged", async () => {
    const t = await startTestSluice({ env: { SLUICE_GROUP_COMMIT_MAX_PENDING: "5" } });
    started.push(t);
    const blocker = new pg.Client({ connectionString: t.config.databaseUrl as string });
    await blocker.connect();
    await blocker.query("BEGIN");
    await blocker.query("LOCK TABLE event_ids IN EXCLUSIVE MODE");
    // A failed check must still free the lock, or stopping the node waits on it.
    onTestFinished(() => blocker.end().catch(() => {}));
    const send = (id: string) =>
      fetch(`${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}&sentry_version=7`, {
        method: "POST",
        body: eventEnvelope(id),
        // A request let in by mistake waits behind the lock: fail it rather than hang the test.
        signal: AbortSignal.timeout(20_000),
      }).then(async (r) => ({ id, status: r.status, retryAfter: r.headers.get("retry-after") }));
    // Requests that arrive together all pass the check before any has reached the committer, so
    // the first ten are let in to wait behind the lock; the twenty after them must be shed.
    const first = Array.from({ length: 10 }, () => send(hex()));
    await new Promise((r) => setTimeout(r, 500));
    const later = Array.from({ length: 20 }, () => send(hex()));
    // A body that never comes: answered at once, so the body was never waited for.
    const headersOnly = await new Promise<{ status: number; retryAfter: string | undefined }>(
      (resolve, reject) => {
        const req = request(
          `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}&sentry_version=7`,
          { method: "POST", headers: { "Content-Length": "100000" } },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] });
            req.destroy();
          },
        );
        req.on("error", reject);
        req.flushHeaders();
      },
    );
    expect(headersOnly).toEqual({ status: 503, retryAfter: "5" });
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    const laterDone = await Promise.all(later);
    expect(laterDone.map((a) => [a.status, a.retryAfter])).toEqual(laterDone.map(() => [503, "5"]));
    await blocker.query("COMMIT");
    const done = [...(await Promise.all(first)), ...laterDone];
    const ok = done.filter((a) => a.status === 200);
    const shed = done.filter((a) => a.status === 503);
    expect(ok.length + shed.length).toBe(30);
    expect(ok.length).toBeGreaterThan(0);
    expect(shed.every((a) => a.retryAfter === "5")).toBe(true);
    const stored = await t.sql.query("SELECT event_id::text FROM event_ids");
    const storedIds = new Set(stored.rows.map((r) => r.event_id.replaceAll("-", "")));
    expect(ok.filter((a) => !storedIds.has(a.id))).toEqual([]);
    expect(await metric(t, "sluice_ingest_overloaded_total")).toBeGreaterThan(0);
  }, 60_000);

  it("a real @sentry/node stops sending the limited category until Retry-After has passed and keeps sending others", async () => {
    const t = await startTestSluice();
    started.push(t);
    const created = await api(t, "/api/0/projects/sluice/default/quotas/", {
      method: "POST",
      body: JSON.stringify({ categories: ["error", "default"], limit: 1, window: 5 }),
    });
    expect(created.status).toBe(201);
    const { stdout } = await run(
      process.execPath,
      [`${clients}rate-limited-client.mjs`, t.dsn, "6000"],
      {
        timeout: 60_000,
      },
    );
    const answered = stdout.split("\n").filter((l) => l.startsWith("answered "));
    expect(answered).toEqual([
      "answered error A 200",
      "answered error B 429",
      "answered error C dropped",
      "answered feedback F1 200",
      "answered error D 200",
      "answered feedback F2 200",
    ]);
    const messages = await t.sql.query(
      "SELECT payload->>'message' AS m FROM events ORDER BY received_at",
    );
    expect(messages.rows.map((r) => r.m)).toEqual(["A", "D"]);
    expect(
      await countRows(t.sql, "outcomes", "outcome = 'rate_limited' AND category = 'error'"),
    ).toBe(1);
  }, 90_000);

  it("trips spike protection past its floor, and shows it on the project", async () => {
    const t = await startTestSluice({ env: { SLUICE_SPIKE_FLOOR_PER_MINUTE: "5" } });
    started.push(t);
    const before = await (await api(t, "/api/0/projects/sluice/default/spike-protection/")).json();
    expect(before).toMatchObject({ isEnabled: true, isActive: false, trips: 0 });
    const statuses = [];
    for (let i = 0; i < 10; i++) {
      const r = await post(t.url, t.projectId, t.publicKey, eventEnvelope());
      statuses.push(r.status);
      if (r.status === 429) {
        expect(r.headers.get("x-sentry-rate-limits")).toMatch(
          /^\d+:default;error;security:project:spike_protection$/,
        );
      }
    }
    // The bound is the floor (a new project has no trailing average), unless the minute rolled over.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(10 - 1);
    let shown: { isActive?: boolean; trips?: number; bound?: number } = {};
    for (let i = 0; i < 50 && !shown.isActive; i++) {
      await new Promise((r) => setTimeout(r, 100));
      shown = (await (
        await api(t, "/api/0/projects/sluice/default/spike-protection/")
      ).json()) as typeof shown;
    }
    expect(shown).toMatchObject({ isActive: true, trips: 1, bound: 5 });
    expect(await metric(t, 'sluice_spike_protection_total{change="start"}')).toBe(1);
    const off = await api(t, "/api/0/projects/sluice/default/spike-protection/", {
      method: "PUT",
      body: JSON.stringify({ isEnabled: false }),
    });
    expect(await off.json()).toMatchObject({ isEnabled: false });
  }, 60_000);
});
