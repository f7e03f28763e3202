import { type ChildProcess, spawn } from "node:child_process";

/**
 * Starts `node <args>` with `env` added to this process's, pushes it to
 * `children` (the benchmark kills what is left), and resolves once its
 * output matches `ready`, whose first group is the port it serves on.
 * Rejects, with the end of its output, when it exits first. Only the last
 * 50-100 KB of output are kept while waiting.
 */
export function startProcess(
  children: ChildProcess[],
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk;
      if (out.length > 100_000) out = out.slice(-50_000);
      const match = ready.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) =>
      reject(new Error(`${args.join(" ")} exited ${code}: ${out.slice(-1000)}`)),
    );
  });
}
