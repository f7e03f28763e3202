import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 once it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds every `redis-server` process of this machine has used so far,
 * or null when none runs here (a Redis elsewhere): the queue's share of the
 * machine, which neither Sluice nor Postgres shows.
 */
export function redisSecondsOfMachine(): (() => number) | null {
  const pids = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "redis-server";
      } catch {
        return false;
      }
    })
    .map(Number);
  if (pids.length === 0) return null;
  return () => pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
}

/**
 * CPU seconds the hypervisor has taken from this machine so far (steal,
 * the eighth value of /proc/stat's "cpu" line, summed over all cores; see
 * proc(5)). On a shared host it rises when neighbours are busy: a step
 * with 30% steal ran on about 1.7 of the 2 cores, so its rates read low.
 * 0 where the kernel does not report it.
 */
export function stealSecondsOfMachine(): number {
  return machineSeconds([7]);
}

/**
 * CPU seconds this machine's cores have had nothing to run so far (idle and
 * iowait, the fourth and fifth values of /proc/stat's "cpu" line, summed
 * over all cores; proc(5)). Near 0% over a step, every core was busy,
 * whatever the processes named beside it add up to (Redis, the kernel's
 * network work and HAProxy count too). 0 where the kernel does not report it.
 */
export function idleSecondsOfMachine(): number {
  return machineSeconds([3, 4]);
}

/** The sum of the given values (0-based, after "cpu") of /proc/stat's first line, in seconds. */
function machineSeconds(fields: number[]): number {
  try {
    const values = (readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "")
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const ticks = fields.reduce((sum, i) => sum + (values[i] ?? Number.NaN), 0);
    return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : 0;
  } catch {
    return 0;
  }
}

/**
 * The CPU of the Postgres work a benchmark causes: the backends connected
 * to its database and the server's background processes (WAL writer,
 * checkpointer, autovacuum), not other databases' backends. `read()` gives
 * cumulative CPU seconds since `start`, counting only increases, so a
 * backend that exits never makes the sum go back. The process list is
 * refreshed every 500 ms on a connection of its own.
 */
export async function startPostgresCpu(
  databaseUrl: string,
): Promise<{ read: () => number; stop: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let pids = new Set<number>();
  const refresh = async () => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR backend_type <> 'client backend'",
    );
    pids = new Set(rows.map((r) => r.pid));
  };
  await refresh();
  const last = new Map<number, number>();
  let total = 0;
  let baselined = false;
  const read = () => {
    for (const pid of pids) {
      const now = cpuSecondsOf(pid);
      const before = last.get(pid);
      // A process first seen after the start did all its work since then.
      if (before === undefined) {
        if (baselined) total += now;
      } else if (now > before) total += now - before;
      last.set(pid, now);
    }
    return total;
  };
  read();
  baselined = true;
  let refreshing = Promise.resolve();
  const timer = setInterval(() => {
    refreshing = refresh().catch(() => {});
  }, 500);
  timer.unref();
  return {
    read,
    stop: async () => {
      clearInterval(timer);
      await refreshing;
      await client.end();
    },
  };
}

/** CPU of named processes over a wall-clock window, in cores (1.0 = one core busy all the time). */
export type CpuShares = Record<string, number>;

/**
 * Starts measuring now: `stop()` returns each source's CPU since, in cores.
 * Sources return cumulative CPU seconds.
 */
export function measureCpu(sources: Record<string, () => number>): { stop: () => CpuShares } {
  const started = performance.now();
  const before = Object.fromEntries(Object.entries(sources).map(([k, f]) => [k, f()]));
  return {
    stop: () => {
      const seconds = (performance.now() - started) / 1000;
      return Object.fromEntries(
        Object.entries(sources).map(([k, f]) => [
          k,
          Number(((f() - (before[k] ?? 0)) / seconds).toFixed(2)),
        ]),
      );
    },
  };
}

/**
 * Samples cumulative CPU seconds of each source every `intervalMs`, so the
 * CPU of a window known only afterwards (a load generator's timed phase,
 * which the generator reports in epoch ms) can be read off: `between(startMs,
 * endMs)` gives cores per source over the samples inside the window, or
 * null when the samples inside span under 100 ms.
 */
export class CpuSampler {
  private readonly samples: { at: number; values: Record<string, number> }[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sources: Record<string, () => number>,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Adds or replaces a source (a process started after the sampler). */
  add(name: string, source: () => number) {
    this.sources[name] = source;
  }

  /** Stops sampling a source (a process that has exited); earlier samples keep it. */
  remove(name: string) {
    delete this.sources[name];
  }

  between(startMs: number, endMs: number): CpuShares | null {
    const inside = this.samples.filter((s) => s.at >= startMs && s.at <= endMs);
    const first = inside[0];
    const last = inside.at(-1);
    if (!first || !last || last.at - first.at < 100) return null;
    const seconds = (last.at - first.at) / 1000;
    const shares: CpuShares = {};
    for (const name of Object.keys(last.values)) {
      const from = first.values[name];
      if (from === undefined) continue;
      shares[name] = Number((((last.values[name] ?? 0) - from) / seconds).toFixed(2));
    }
    return shares;
  }

  stop() {
    clearInterval(this.timer);
  }

  private sample() {
    const values: Record<string, number> = {};
    for (const [name, source] of Object.entries(this.sources)) values[name] = source();
    this.samples.push({ at: Date.now(), values });
    if (this.samples.length > 20_000) this.samples.splice(0, 1_000);
  }
}

/**
 * "ingest 112%, postgres 31%, stolen by the host 4%" for a report line
 * (100% = one core); the machine's idle and steal, when sampled, come last.
 */
export function formatShares(shares: CpuShares | null | undefined): string {
  if (!shares) return "CPU not measured";
  const { steal, idle, ...processes } = shares;
  const parts = Object.entries(processes).map(
    ([name, cores]) => `${name} ${Math.round(cores * 100)}%`,
  );
  if (idle !== undefined) parts.push(`machine idle ${Math.round(idle * 100)}%`);
  if (steal !== undefined) parts.push(`stolen by the host ${Math.round(steal * 100)}%`);
  return parts.join(", ");
}
