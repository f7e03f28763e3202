import { type ChildProcess, execFile, spawn } from "node:child_process";
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
 * added to `children` so the test can kill what is left.
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
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr?.on("data", (chunk) => {
      log += chunk;
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
 * Sends SIGTERM and resolves once the node has drained and exited 0; throws
 * with the end of its log when it exited otherwise.
 */
export async function stopNode(node: NodeProcess): Promise<void> {
  const code =
    node.child.exitCode ??
    (await new Promise<number | null>((resolve) => {
      node.child.once("exit", (c) => resolve(c));
      node.child.kill("SIGTERM");
    }));
  if (code !== 0) throw new Error(`${node.label} exited with ${code}:\n${node.log().slice(-3000)}`);
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
