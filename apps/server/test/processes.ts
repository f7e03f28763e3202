import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A checkout of Sluice to run: the current tree or an older release's worktree. */
export type Version = { label: string; root: string };

/**
 * A `sluice serve` child process, the port it serves on, its metrics port
 * (null for releases that served `/metrics` on the traffic port), and its log so far.
 */
export type NodeProcess = {
  port: number;
  metricsPort: number | null;
  child: ChildProcess;
  label: string;
  log(): string;
};

/**
 * Starts `sluice serve --role=<role>` from `version` on a free port (or
 * `env.PORT`) and resolves once it logs that it is serving. The child is
 * added to `children` so the test can kill what is left. With
 * `SLUICE_TEST_NODE_LOGS=<dir>` each node's log is also written to a file
 * there (`<version>_<role>-<pid>.log`), to read after a failed run.
 */
export function startNode(
  version: Version,
  role: string,
  env: Record<string, string>,
  children: ChildProcess[],
): Promise<NodeProcess> {
  const child = spawn(
    process.execPath,
    [join(version.root, "apps/server/bin/sluice.js"), "serve", `--role=${role}`],
    {
      env: {
        ...process.env,
        PORT: "0",
        SLUICE_METRICS_PORT: "0",
        HOST: "127.0.0.1",
        ...env,
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  children.push(child);
  const logDir = process.env.SLUICE_TEST_NODE_LOGS;
  const logFile = logDir
    ? join(logDir, `${version.label}-${role}-${child.pid}.log`.replaceAll(/[^\w.-]+/g, "_"))
    : null;
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr?.on("data", (chunk) => {
      log += chunk;
      if (logFile) appendFileSync(logFile, chunk);
      const match = /"port":(\d+).*"msg":"sluice is serving"/.exec(log);
      if (match)
        resolve({
          port: Number(match[1]),
          metricsPort: Number(/"metricsPort":(\d+)/.exec(log)?.[1] ?? Number.NaN) || null,
          child,
          label: `${version.label} ${role}`,
          log: () => log,
        });
    });
    child.once("exit", (code) =>
      reject(new Error(`${version.label} ${role} exited with ${code}:\n${log.slice(-2000)}`)),
    );
  });
}

/**
 * Sends SIGTERM and resolves `"drained"` once the node has drained and
 * exited 0; throws with the end of its log when it exited otherwise. With
 * `graceMs`, what an orchestrator does (Kubernetes'
 * `terminationGracePeriodSeconds`): a node still running after it is
 * SIGKILLed, and then `"killed"` is the answer when `killAfterGrace` allows
 * it, else an error saying it did not drain in time.
 */
export async function stopNode(
  node: NodeProcess,
  options: { graceMs?: number; killAfterGrace?: boolean } = {},
): Promise<"drained" | "killed"> {
  if (node.child.exitCode === null && node.child.signalCode === null) {
    const exited = new Promise<void>((resolve) => node.child.once("exit", () => resolve()));
    node.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace">((resolve) => {
      if (options.graceMs !== undefined)
        timer = setTimeout(() => resolve("grace"), options.graceMs);
    });
    const first = await Promise.race([exited, graceOver]);
    clearTimeout(timer);
    if (first === "grace") {
      node.child.kill("SIGKILL");
      await exited;
      if (options.killAfterGrace) return "killed";
      throw new Error(
        `${node.label} did not drain within ${options.graceMs} ms:\n${node.log().slice(-3000)}`,
      );
    }
  }
  const code = node.child.exitCode;
  if (code !== 0) throw new Error(`${node.label} exited with ${code}:\n${node.log().slice(-3000)}`);
  return "drained";
}

/** Runs a `sluice` command of `version` with `--json` and parses what it prints. */
export async function sluiceJson(version: Version, env: Record<string, string>, ...args: string[]) {
  const bin = join(version.root, "apps/server/bin/sluice.js");
  const { stdout } = await run(process.execPath, [bin, ...args, "--json"], {
    env: { ...process.env, ...env, LOG_LEVEL: "warn" },
  });
  return JSON.parse(stdout);
}

/**
 * Runs a `sluice` command of `version` (its own code, against its own
 * `migrations/`) and returns what it printed; rejects with its output when it
 * exits non-zero. For commands without `--json`, such as `migrate apply` of
 * release 0.1.0.
 */
export async function runSluice(
  version: Version,
  env: Record<string, string>,
  ...args: string[]
): Promise<string> {
  const bin = join(version.root, "apps/server/bin/sluice.js");
  const { stdout } = await run(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env, LOG_LEVEL: "warn" },
  });
  return stdout;
}

/** Creates organization `sluice` and project `default` with `version`'s command; returns the DSN. */
export async function createDefaultProject(
  version: Version,
  env: Record<string, string>,
): Promise<string> {
  const { dsn } = await sluiceJson(
    version,
    env,
    "projects",
    "create",
    "default",
    "--org",
    "sluice",
  );
  return dsn;
}
