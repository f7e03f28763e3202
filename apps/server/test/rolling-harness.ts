import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { readMigrationFiles } from "@sluice/db";
import type pg from "pg";
import { repoRoot } from "./compat-targets.ts";
import type { NodeProcess } from "./processes.ts";

/** A free loopback port (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts HAProxy (Debian's package) in front of the ingest slots, health
 * checking `/readyz` every 300 ms with a 1 s check timeout (two failures
 * take a server out, one success puts it back: one slow check on a busy
 * machine must not empty the pool). A request whose connection failed or got no
 * answer is retried on another server: ingest is idempotent on event_id
 * (docs/architecture.md §5.4), so that never makes a second event. When no node
 * is ready (Postgres down), HAProxy's own 503 carries `Retry-After` and a
 * `{"detail": ...}` body, like Sluice's.
 */
export async function startHaproxy(
  dir: string,
  port: number,
  slots: number[],
  children: ChildProcess[],
) {
  const config = `global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 60s
  timeout http-request 30s
  option http-buffer-request
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
  http-error status 503 content-type "application/json" string "{\\"detail\\":\\"no Sluice node is ready; retry later\\"}" hdr "Retry-After" "5"
frontend ingest
  bind 127.0.0.1:${port}
  default_backend ingest
backend ingest
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  timeout check 1s
  default-server inter 300ms fall 2 rise 1
${slots.map((p, i) => `  server slot${i} 127.0.0.1:${p} check`).join("\n")}
`;
  const path = join(dir, "haproxy.cfg");
  writeFileSync(path, config);
  const child = spawn("haproxy", ["-f", path, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let log = "";
  child.stderr?.on("data", (chunk) => {
    log += chunk;
  });
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error(`haproxy exited: ${log}`);
  return child;
}

/** Latency figures of a set of answers (ms). */
export function latencyFigures(ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { requests: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

/** One answer the load client saw. */
export type LoadResult = {
  eventId: string;
  started: number;
  ms: number;
  status?: number;
  retryAfter?: string | null;
  error?: string;
};

/**
 * Starts the open-loop load client (clients/load-client.mjs) against `url`
 * at `rate` events per second; `stop` ends it and returns every answer.
 */
export function startLoad(url: string, rate: number, dir: string, children: ChildProcess[]) {
  const resultsFile = join(dir, `load-${Date.now()}.json`);
  const client = spawn(
    process.execPath,
    [
      join(repoRoot, "apps/server/test/clients/load-client.mjs"),
      url,
      String(rate),
      "600000",
      resultsFile,
    ],
    {
      stdio: "inherit",
    },
  );
  children.push(client);
  const exited = new Promise<number | null>((resolve) =>
    client.once("exit", (code) => resolve(code)),
  );
  return {
    async stop(): Promise<LoadResult[]> {
      client.kill("SIGINT");
      const code = await exited;
      if (code !== 0) throw new Error(`the load client exited with ${code}`);
      return (JSON.parse(readFileSync(resultsFile, "utf8")) as { results: LoadResult[] }).results;
    },
  };
}

/** The migration file names a checkout ships (`<root>/migrations/NNNN_*.sql`), in order. */
export function migrationNames(root: string): string[] {
  return readMigrationFiles(join(root, "migrations")).map((f) => f.name);
}

/** The migration file names the database has applied, in version order. */
export async function appliedMigrationNames(pool: pg.Pool): Promise<string[]> {
  const result = await pool.query("SELECT name FROM sluice_migrations ORDER BY version");
  return result.rows.map((r) => r.name as string);
}

/**
 * The machine's CPU counters (Linux `/proc/stat`, all cores, in clock
 * ticks) and 1-minute load average, to tell a roll slowed by other
 * processes on a shared machine (busy near 1, load above the core count)
 * from one slowed by Sluice itself; null counters off Linux.
 */
export function machineCpu(): { busy: number; total: number; load: number } | null {
  const load = Math.round((loadavg()[0] ?? 0) * 10) / 10;
  try {
    const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total, load };
  } catch {
    return null;
  }
}

/** The share of the machine's CPU in use between two `machineCpu()` readings, and the load at each. */
export function cpuBetween(
  a: ReturnType<typeof machineCpu>,
  b: ReturnType<typeof machineCpu>,
): { busyShare: number; loadAverage: [number, number]; cores: number } | null {
  if (!a || !b || b.total <= a.total) return null;
  return {
    busyShare: Math.round(((b.busy - a.busy) / (b.total - a.total)) * 100) / 100,
    loadAverage: [a.load, b.load],
    cores: cpus().length,
  };
}

/**
 * What the first new node's migrations took: the milliseconds of each file
 * (its `migration applied` lines, summed) and the attempts that timed out
 * on a lock or were a deadlock's victim and were retried.
 */
export function migrationFigures(node: NodeProcess): { ms: number; retries: number } {
  let ms = 0;
  let retries = 0;
  for (const line of node.log().split("\n")) {
    if (line.includes('"msg":"migration applied"')) ms += (JSON.parse(line) as { ms: number }).ms;
    else if (/"msg":"migration (timed out waiting for a lock|was a deadlock's victim)/.test(line))
      retries++;
  }
  return { ms, retries };
}

/** The migrations a node applied itself, from its `migration applied` log lines. */
export function migrationsAppliedBy(node: NodeProcess): string[] {
  return node
    .log()
    .split("\n")
    .filter((line) => line.includes('"msg":"migration applied"'))
    .map((line) => (JSON.parse(line) as { migration: string }).migration);
}

/**
 * How often each warning or error message (pino level 40 and up) appears in
 * the nodes' logs, after the first `since.get(node)` characters of each
 * (what it logged before): printed with the figures, so that a failed roll
 * says why.
 */
export function warningCounts(
  nodes: NodeProcess[],
  since: Map<NodeProcess, number> = new Map(),
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const node of nodes) {
    for (const line of node
      .log()
      .slice(since.get(node) ?? 0)
      .split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const entry = JSON.parse(line) as {
          level?: number;
          msg?: string;
          err?: { message?: string };
        };
        if ((entry.level ?? 0) < 40) continue;
        const key = `${node.label}: ${entry.msg ?? ""}${entry.err?.message ? ` (${entry.err.message.slice(0, 120)})` : ""}`;
        counts[key] = (counts[key] ?? 0) + 1;
      } catch {
        // a partial last line
      }
    }
  }
  return counts;
}
