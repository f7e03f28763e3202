import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiToken } from "@sluice/db";
import { createTestDatabase, openTestPool } from "@sluice/db/testing";
import { Redis } from "ioredis";
import type pg from "pg";
import { DEFAULT_SCOPES, hashApiToken, newApiToken } from "../src/accounts/auth-tokens.ts";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { type Config, readConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { parseRoles } from "../src/roles.ts";
import { type Services, startServices } from "../src/services.ts";
import { type RunningSluice, startSluice } from "../src/start-sluice.ts";

/** The test Redis, as CI starts it. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

const suffix = () => randomBytes(5).toString("hex");

export { createTestDatabase };

/** Deletes every Redis key under a queue prefix (never the whole Redis: other runs share it). */
export async function deleteQueueKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  let deleted = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
  return deleted;
}

export type TestSluice = {
  url: string;
  /** Base URL of the process's own metrics server (`/metrics`). */
  metricsUrl: string;
  config: Config;
  services: Services;
  projectId: number;
  publicKey: string;
  dsn: string;
  token: string;
  /** The SQL pool of the test database, for assertions. */
  sql: pg.Pool;
  stop(): Promise<void>;
};

export type TestSluiceOptions = {
  roles?: string;
  redis?: boolean;
  env?: Record<string, string>;
  /** Share an existing database (several nodes, one database). */
  databaseUrl?: string;
  queuePrefix?: string;
};

/**
 * Starts Sluice in this process on a real socket, against its own database,
 * queue prefix and data directory, with org `sluice`, project `default`, a
 * DSN and an API token ready.
 */
export async function startTestSluice(options: TestSluiceOptions = {}): Promise<TestSluice> {
  const ownDb = options.databaseUrl ? null : await createTestDatabase();
  const databaseUrl = options.databaseUrl ?? (ownDb?.url as string);
  const dataDir = mkdtempSync(join(tmpdir(), "sluice-test-"));
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    SLUICE_QUEUE_PREFIX: options.queuePrefix ?? `sluice-test-${suffix()}`,
    SLUICE_DATA_DIR: dataDir,
    PORT: "0",
    SLUICE_METRICS_PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error",
    SLUICE_GROUP_COMMIT_WINDOW_MS: "5",
    // Tests that load a project fast are not spikes; spike tests set their own floor.
    SLUICE_SPIKE_FLOOR_PER_MINUTE: "10000000",
    // The tests' alert receivers listen on 127.0.0.1; the guard's own test turns it off.
    SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS: "true",
    ...(options.redis === false ? {} : { REDIS_URL }),
    ...options.env,
  };
  const result = readConfig(env);
  if (!result.ok) throw new Error(result.problems.join("; "));
  const log = createLogger(result.config.logLevel, "test");
  const services = await startServices(result.config, log, { schema: "migrate" });
  const running: RunningSluice = await startSluice(
    services,
    parseRoles(options.roles ?? "all"),
    0,
    "127.0.0.1",
  );
  const config = { ...result.config, publicUrl: running.url };
  services.config = config;
  const { project, dsn } = await createProjectWithKey(services, "sluice", "default");
  const token = newApiToken();
  await createApiToken(services.db.orm, hashApiToken(token), DEFAULT_SCOPES, "test");
  const sql = openTestPool(databaseUrl);
  return {
    url: running.url,
    metricsUrl: running.metricsUrl,
    config,
    services,
    projectId: project.id,
    publicKey: new URL(dsn).username,
    dsn,
    token,
    sql,
    async stop() {
      await running.stop();
      await services.close();
      await sql.end();
      if (!options.queuePrefix) await deleteQueueKeys(config.queuePrefix);
      await ownDb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` every 100 ms until it returns true or `timeoutMs` passes (then throws). */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Counts rows of a table in the test database. */
export async function countRows(sql: pg.Pool, table: string, where = "true"): Promise<number> {
  const result = await sql.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`);
  return result.rows[0].n;
}

/** Calls the REST API with the test token. */
export async function api(t: TestSluice, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${t.url}${path}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${t.token}`,
      "Content-Type": "application/json",
      ...(init.headers ?? {}),
    },
  });
}
