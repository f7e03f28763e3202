import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTestDatabase, openTestPool, type TestDatabase } from "@sluice/db/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  deleteQueueKeys,
  REDIS_URL,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";
import { startTcpProxy } from "./tcp-proxy.ts";

const run = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const sluiceBin = join(root, "apps/server/bin/sluice.js");

const envelope = (size = 100) => {
  const id = crypto.randomUUID().replaceAll("-", "");
  return {
    id,
    body: `{"event_id":"${id}"}\n{"type":"event"}\n${JSON.stringify({ message: "x".repeat(size) })}\n`,
  };
};

/** One request on a given agent; resolves with the status, headers and whether the socket was reused. */
function post(
  url: string,
  body: string,
  agent?: Agent,
): Promise<{ status: number; headers: Record<string, unknown>; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", agent }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, reused: req.reusedSocket }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("a sluice process on SIGTERM and SIGHUP", () => {
  let db: TestDatabase;
  let child: ChildProcess;
  let port = 0;
  let metricsPort = 0;
  let ingestUrl = "";
  let configDir: string;
  const prefix = `sluice-drain-${Date.now()}`;
  const configFile = () => join(configDir, "sluice.env");
  beforeAll(async () => {
    db = await createTestDatabase();
    configDir = mkdtempSync(join(tmpdir(), "sluice-config-"));
    writeFileSync(configFile(), "LOG_LEVEL=info\nSLUICE_MAX_EVENT_BYTES=100000\n");
    const env = {
      ...process.env,
      DATABASE_URL: db.url,
      REDIS_URL,
      SLUICE_QUEUE_PREFIX: prefix,
      SLUICE_CONFIG_FILE: configFile(),
      HOST: "127.0.0.1",
      PORT: "0",
      SLUICE_METRICS_PORT: "0",
      SLUICE_DRAIN_DELAY_MS: "1500",
    };
    const { stdout } = await run(
      process.execPath,
      [sluiceBin, "projects", "create", "default", "--json"],
      { env },
    );
    const { dsn } = JSON.parse(stdout) as { dsn: string };
    child = spawn(process.execPath, [sluiceBin, "serve"], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    [port, metricsPort] = await new Promise<[number, number]>((resolve, reject) => {
      let log = "";
      child.stderr?.on("data", (chunk) => {
        log += chunk;
        const match = /"port":(\d+),"metricsPort":(\d+).*"msg":"sluice is serving"/.exec(log);
        if (match) resolve([Number(match[1]), Number(match[2])]);
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${log}`)));
    });
    const key = new URL(dsn).username;
    ingestUrl = `http://127.0.0.1:${port}/api/${new URL(dsn).pathname.slice(1)}/envelope/?sentry_key=${key}`;
  });
  afterAll(async () => {
    if (child?.exitCode === null) child.kill("SIGKILL");
    await deleteQueueKeys(prefix);
    await db?.drop();
    rmSync(configDir, { recursive: true, force: true });
  });

  it("reloads limits on SIGHUP without dropping a keep-alive connection", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await post(ingestUrl, envelope(2000).body, agent)).status).toBe(200);
    writeFileSync(configFile(), "LOG_LEVEL=info\nSLUICE_MAX_EVENT_BYTES=1024\n");
    child.kill("SIGHUP");
    await waitFor(
      async () => (await post(ingestUrl, envelope(2000).body, agent)).status === 413,
      5_000,
      "the new limit",
    );
    const after = await post(ingestUrl, envelope(100).body, agent);
    expect(after).toMatchObject({ status: 200, reused: true });
    agent.destroy();
  });

  it("drains on SIGTERM: readiness fails at once, in-flight and delayed requests are answered, then it exits 0", async () => {
    const inFlight = envelope();
    const slow = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        ingestUrl,
        { method: "POST", headers: { "Transfer-Encoding": "chunked" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.write(inFlight.body.slice(0, 20));
      setTimeout(() => req.end(inFlight.body.slice(20)), 2500);
    });
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    child.kill("SIGTERM");
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 503,
      2_000,
      "readiness to fail",
    );
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toMatch(
      /sluice_ingest_items_total\{item_type="event",outcome="accepted"\} [1-9]/,
    );
    const during = await post(ingestUrl, envelope().body);
    expect(during.status).toBe(200);
    expect(during.headers.connection).toBe("close");
    expect(await slow).toBe(200);
    expect(await exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
    const pool = openTestPool(db.url);
    const stored = await pool.query("SELECT 1 FROM events WHERE event_id = $1", [inFlight.id]);
    await pool.end();
    expect(stored.rowCount).toBe(1);
  });
});

describe("dependencies failing", () => {
  let db: TestDatabase;
  let t: TestSluice | null = null;
  afterEach(async () => {
    await t?.stop();
    t = null;
    await db?.drop();
  });
  const direct = () => openTestPool(db.url);

  it("answers 503 with Retry-After while Postgres is away, fails readiness, and recovers by itself", async () => {
    db = await createTestDatabase();
    const proxy = await startTcpProxy(5432);
    const proxied = new URL(db.url);
    proxied.port = String(proxy.port);
    t = await startTestSluice({
      databaseUrl: proxied.toString(),
      env: { SLUICE_DB_CONNECT_TIMEOUT_MS: "1000" },
    });
    const url = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
    const before = envelope();
    expect((await fetch(url, { method: "POST", body: before.body })).status).toBe(200);

    await proxy.cut();
    const started = Date.now();
    const down = await fetch(url, { method: "POST", body: envelope().body });
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(503);

    await proxy.restore();
    await waitFor(
      async () => (await fetch(`${t?.url}/readyz`)).status === 200,
      10_000,
      "readiness back",
    );
    const after = envelope();
    expect((await fetch(url, { method: "POST", body: after.body })).status).toBe(200);
    const pool = direct();
    const rows = await pool.query("SELECT event_id::text FROM events WHERE event_id IN ($1, $2)", [
      before.id,
      after.id,
    ]);
    await pool.end();
    expect(rows.rowCount).toBe(2);
    await t.stop();
    t = null;
    await proxy.close();
  });

  it("keeps accepting and stays ready while Redis is away; the sweeper processes those events later", async () => {
    db = await createTestDatabase();
    const proxy = await startTcpProxy(6379);
    const prefix = `sluice-noredis-${Date.now()}`;
    t = await startTestSluice({
      databaseUrl: db.url,
      queuePrefix: prefix,
      env: {
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        SLUICE_SWEEP_INTERVAL_MS: "300",
        SLUICE_SWEEP_MIN_AGE_MS: "500",
      },
    });
    const url = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
    await proxy.cut();
    for (let i = 0; i < 10; i++)
      expect((await fetch(url, { method: "POST", body: envelope().body })).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    await proxy.restore();
    const pool = direct();
    await waitFor(
      async () =>
        (await pool.query("SELECT count(*)::int AS n FROM events WHERE processed_at IS NULL"))
          .rows[0].n === 0,
      30_000,
      "processing after Redis returns",
    );
    expect((await pool.query("SELECT count(*)::int AS n FROM events")).rows[0].n).toBe(10);
    await pool.end();
    await t.stop();
    t = null;
    await deleteQueueKeys(prefix);
    await proxy.close();
  });
});
