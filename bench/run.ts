/**
 * `npm run bench [-- --quick]`: measures Sluice's ingest and processing on
 * this machine's Postgres and Redis, next to the limits measured in the same
 * run (a raw durable COPY of the same payloads; an HTTP handler that reads
 * and discards the same bodies), and prints every figure with its ratio.
 * Writes bench/results/latest.json. Never fails on speed: it is not a test.
 *
 * `--rates=300,800[,...]` measures only ingest at those open-loop rates
 * (events/s, `--quick` for 3 s steps): throughput, latency and ingest's CPU
 * per event at each, split by stage with `--profile` (the last rate); for
 * comparing one change to the hot path with the next.
 *
 * `--sustained=1200[,...]` measures ingest and the worker together at those
 * offered rates: processed events/s, lag, and CPU per processed event of
 * ingest, the worker and Postgres (`--profile` profiles the worker).
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { applyMigrations } from "@sluice/db";
import { createTestDatabase, silentLog } from "@sluice/db/testing";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort, startHaproxy } from "../apps/server/test/rolling-harness.ts";
import { summarizeCpuProfiles } from "./cpu-profile-summary.ts";
import { cpuByStage, type StageShare } from "./cpu-stages.ts";
import { deployedHeapFlag } from "./deployed-heap.ts";
import { buildEvent, newEventId, type PayloadKind } from "./payloads.ts";
import {
  CpuSampler,
  type CpuShares,
  cpuSecondsOf,
  formatShares,
  idleSecondsOfMachine,
  redisSecondsOfMachine,
  startPostgresCpu,
  stealSecondsOfMachine,
} from "./process-cpu.ts";
import { startProcess as startChild } from "./start-process.ts";

const run = promisify(execFile);
const root = new URL("../", import.meta.url).pathname;
const quick = process.argv.includes("--quick");
/** `--profile`: run ingest and the worker with --cpu-prof and print where their CPU went. */
const profile = process.argv.includes("--profile");
const profileDir = join(root, "bench/results/profiles");
const workerProfileDir = join(root, "bench/results/profiles-worker");
/**
 * `--payload-storage=jsonb|compressed|zstd` (default zstd, what a fleet runs
 * once no node before 0.6.0 is left; README "Upgrading"): SLUICE_PAYLOAD_STORAGE.
 */
const payloadStorage =
  process.argv.find((a) => a.startsWith("--payload-storage="))?.split("=")[1] ?? "zstd";
if (!["jsonb", "compressed", "zstd"].includes(payloadStorage)) {
  throw new Error(`--payload-storage must be jsonb, compressed or zstd, not ${payloadStorage}`);
}
const fixedRates = process.argv
  .find((a) => a.startsWith("--rates="))
  ?.slice("--rates=".length)
  .split(",")
  .map(Number);
/** `--sustained=1200[,...]`: ingest and the worker together at these offered rates only. */
const sustainedRates = process.argv
  .find((a) => a.startsWith("--sustained="))
  ?.slice("--sustained=".length)
  .split(",")
  .map(Number);
const SECONDS = quick ? 3 : 10;
const CONNECTIONS = 64;
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type LoadResult = {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  perSecond: number;
  latency: { p50: number; p99: number; max: number };
  bytesPerRequest: number;
  /** The generator's timed phase (epoch ms) and its own CPU in it (cores). */
  window: { startMs: number; endMs: number };
  generatorCores: number;
};

async function load(job: {
  url: string;
  kind: PayloadKind;
  form: "envelope" | "store";
  gzip: boolean;
  seconds: number;
  rate?: number;
}): Promise<LoadResult> {
  const spec = {
    ...job,
    connections: CONNECTIONS,
    bodies: Math.min(50_000, Math.ceil((job.rate ?? 20_000) * job.seconds * 1.2)),
  };
  // Closed loop (the peak) with autocannon; fixed rates open loop, Poisson arrivals.
  const generator = job.rate ? "bench/open-loop-process.ts" : "bench/load-process.ts";
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", join(root, generator), JSON.stringify(spec)],
    { maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) as string);
}

const startProcess = (args: string[], env: Record<string, string>, ready: RegExp) =>
  startChild(children, args, env, ready);

/** A memory line of a process's `/proc/{pid}/status` (`VmRSS`: now, `VmHWM`: its peak), in MiB. */
function statusMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const line = new RegExp(`${field}:\\s+(\\d+) kB`).exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  return Number(line?.[1] ?? 0) / 1024;
}

/** CPU seconds (user + system) and peak RSS (bytes) of a process, from /proc. */
function processStats(pid: number) {
  return { cpuSeconds: cpuSecondsOf(pid), peakRssBytes: statusMiB(pid, "VmHWM") * 2 ** 20 };
}

type Latency = { p50: number; p99: number; max: number };
type OpenLoopFigure = Latency & {
  rate: number;
  achieved: number;
  non2xx: number;
  errors: number;
  /** CPU during the step, in cores (1 = one core): ingest, Postgres, load generator. */
  cores: CpuShares | null;
  /** When the step's load ran (epoch ms). */
  window: { startMs: number; endMs: number };
};

/**
 * The peak search's rule (issue #16): offered load rises until p99 passes
 * 1 s, an error or non-2xx answer appears, or fewer than 90% of the offered
 * requests are answered 2xx within the step (Poisson arrivals over a few
 * seconds vary by a few percent); the peak is the last step that passed.
 */
const PEAK_P99_LIMIT_MS = 1_000;
const PEAK_STEP_FACTOR = 1.25;
const stepPassed = (r: OpenLoopFigure) =>
  r.p99 <= PEAK_P99_LIMIT_MS && r.non2xx === 0 && r.errors === 0 && r.achieved >= r.rate * 0.9;

/** µs of CPU per event from cores busy and events per second. */
const microsPerEvent = (cores: number | undefined, perSecond: number) =>
  cores === undefined || perSecond <= 0 ? null : Math.round((cores * 1e6) / perSecond);

/** Everything one run measured; bench/results/latest.json holds it. */
type Figures = {
  machine: { cpus: number; cpu: string | undefined; memoryGiB: number; node: string };
  mode: "quick" | "full";
  payloadStorage: string;
  postgres?: { version: string; synchronous_commit: string };
  limits?: {
    copyPerSecond: number;
    copyBytesPerRow: number;
    /** CPU during the COPYs, in cores: the COPY client and all of Postgres. */
    copyCores: CpuShares;
    httpPerSecond: number;
  };
  ingest?: {
    /** The closed loop (autocannon, 64 connections): what it reached and the CPU it took. */
    closedLoop: { perSecond: number; latency: Latency; cores: CpuShares | null };
    /** Every step of the rising open-loop search; the peak is the last that passed. */
    peakSearch: OpenLoopFigure[];
    peakPerSecond: number;
    /** CPU at the peak step, in cores, and ingest's µs of CPU per event there. */
    peakCores: CpuShares | null;
    ingestMicrosPerEventAtPeak: number | null;
    /** Ingest's CPU at the peak step split by stage (`--profile` only). */
    peakStages?: StageShare[];
    peakLatency: Latency;
    peakNon2xx: number;
    cpuSecondsPer1000Events: number;
    peakRssMiB: number;
    /** The largest RSS sampled during the peak step. */
    rssAtPeakMiB: number;
    /** Max RSS of a fresh ingest process over one step at the peak rate (no overload step before it). */
    freshRssAtPeakMiB?: number;
    openLoop: Record<string, OpenLoopFigure>;
    storedBytesPerEvent: number;
    typicalEventJsonBytes: number;
    typicalEventGzipBytes: number;
  };
  peakByPayload?: Record<string, number>;
  /** Peaks through HAProxy: one ingest behind it, two behind it, and two/one. */
  haproxy?: {
    one: { peak: number; cores: CpuShares | null };
    two: { peak: number; cores: CpuShares | null };
    ratio: number;
  };
  sustained?: SustainedFigure;
  sustainedSteps?: SustainedFigure[];
};

/** Ingest and processing together at one offered rate. */
type SustainedFigure = {
  offeredPerSecond: number;
  acknowledgedPerSecond: number;
  /** Events processed per second in the load's last three quarters (the steady state). */
  processedPerSecond: number;
  /** Before session 15's figure: processed before the last arrival, over the whole load (reads low by the lag). */
  processedBeforeLastArrivalPerSecond: number;
  lagSeconds: Latency;
  drainedAfterSeconds: number;
  /** CPU while the load ran, in cores: ingest, worker, Postgres, Redis, the generator, idle. */
  cores: CpuShares | null;
};

/** Empties the benchmark's queue, so one phase's jobs never delay the next. */
async function deleteQueueKeys(prefix: string) {
  const redis = new Redis(REDIS_URL);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

const ratio = (value: number, limit: number) =>
  limit > 0 ? `${((value / limit) * 100).toFixed(0)}%` : "n/a";

async function main() {
  const db = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: db.url });
  const prefix = `sluice-bench-${Date.now()}`;
  const figures: Figures = {
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    mode: quick ? "quick" : "full",
    payloadStorage,
  };
  try {
    await applyMigrations(pool, {
      holder: "bench",
      leaseMs: 10_000,
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 60_000,
      lockRetries: 3,
      log: silentLog,
    });
    const pgVersion = (await pool.query("SHOW server_version")).rows[0].server_version;
    const syncCommit = (await pool.query("SHOW synchronous_commit")).rows[0].synchronous_commit;
    figures.postgres = { version: pgVersion, synchronous_commit: syncCommit };
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      SLUICE_QUEUE_PREFIX: prefix,
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
      PORT: "0",
      // Ingest and worker run side by side: each takes a free metrics port.
      SLUICE_METRICS_PORT: "0",
      SLUICE_PAYLOAD_STORAGE: payloadStorage,
      // Spike protection stays on (its counters cost a Redis round trip per
      // batch of requests, as in production) but never refuses: a minute of
      // the closed loop alone passes the default floor of 60,000 events, and
      // its 429s would end the peak search at the first step.
      SLUICE_SPIKE_FLOOR_PER_MINUTE: "1000000000",
    };
    // What deployments run: the bundle (npm run build), not the sources through tsx.
    await run("npm", ["run", "build"], { cwd: root });
    const bin = join(root, "apps/server/dist/sluice.mjs");
    // Run as the Docker image runs it (Dockerfile ENV and ENTRYPOINT), with
    // the heap limit Node derives from the memory limit of k8s/ (the same for
    // every role, deploy-files.test.ts). BENCH_NODE_FLAGS (space-separated)
    // replaces them, to compare V8 settings.
    const imageFlags = process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? [
      "--max-semi-space-size=16",
      deployedHeapFlag(join(root, "k8s/ingest.yaml")),
    ];
    console.log(`Sluice's node flags: ${imageFlags.join(" ")}`);
    const imageEnv = { MALLOC_ARENA_MAX: "2" };
    const { stdout } = await run(process.execPath, [bin, "projects", "create", "bench", "--json"], {
      env: { ...process.env, ...env },
    });
    const dsn = new URL(JSON.parse(stdout).dsn);
    const ingestPath = (port: number, form: "envelope" | "store") =>
      `http://127.0.0.1:${port}/api/${dsn.pathname.slice(1)}/${form}/?sentry_key=${dsn.username}&sentry_version=7`;

    if (fixedRates) {
      await measureRates(fixedRates, bin, { ...env, ...imageEnv }, imageFlags, ingestPath);
      return;
    }
    if (sustainedRates) {
      await measureSustained(sustainedRates, {
        bin,
        env: { ...env, ...imageEnv },
        nodeFlags: imageFlags,
        ingestPath,
        pool,
        databaseUrl: db.url,
      });
      return;
    }
    console.log("limits: raw durable COPY of the typical payload ...");
    const copy = JSON.parse(
      (
        await run(process.execPath, [
          "--import",
          "tsx",
          join(root, "bench/copy-process.ts"),
          JSON.stringify({ url: db.url, kind: "typical", seconds: SECONDS }),
        ])
      ).stdout,
    );
    console.log("limits: a Node HTTP handler that reads and discards the body ...");
    const discard = await startProcess(
      ["--import", "tsx", join(root, "bench/discard-server.ts")],
      {},
      /"port":(\d+)/,
    );
    const http = await load({
      url: `http://127.0.0.1:${discard.port}/`,
      kind: "typical",
      form: "envelope",
      gzip: false,
      seconds: SECONDS,
    });
    discard.child.kill("SIGTERM");
    figures.limits = {
      copyPerSecond: Math.round(copy.perSecond),
      copyBytesPerRow: Math.round(copy.bytesPerRow),
      copyCores: copy.cores,
      httpPerSecond: Math.round(http.perSecond),
    };

    if (profile) rmSync(profileDir, { recursive: true, force: true });
    const profileArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    const ingest = await startProcess(
      [...imageFlags, ...profileArgs, bin, "serve", "--role=ingest"],
      { ...env, ...imageEnv, LOG_LEVEL: "info", SLUICE_DRAIN_DELAY_MS: "0" },
      /"port":(\d+).*"msg":"sluice is serving"/,
    );
    const pid = ingest.child.pid as number;
    await load({
      url: ingestPath(ingest.port, "envelope"),
      kind: "typical",
      form: "envelope",
      gzip: false,
      seconds: 2,
    });

    const postgresCpu = await startPostgresCpu(db.url);
    // Steal and idle are the machine's, not a process's: how much of the two
    // cores the step did not have, and how much it left unused (near 0: the
    // machine, not one process, is what saturated).
    const redisCpu = redisSecondsOfMachine();
    const cpu = new CpuSampler({
      ingest: () => cpuSecondsOf(pid),
      postgres: postgresCpu.read,
      ...(redisCpu ? { redis: redisCpu } : {}),
      idle: idleSecondsOfMachine,
      steal: stealSecondsOfMachine,
    });
    // Ingest's resident memory every 200 ms, for its RSS in one step (the
    // high-water mark also holds the overload steps past the peak).
    const rssSamples: { at: number; mib: number }[] = [];
    const rssTimer = setInterval(() => {
      rssSamples.push({ at: Date.now(), mib: statusMiB(pid, "VmRSS") });
    }, 200);
    rssTimer.unref();
    const rssIn = (w: { startMs: number; endMs: number }) =>
      Math.round(
        rssSamples
          .filter((r) => r.at >= w.startMs && r.at <= w.endMs)
          .reduce((m, r) => Math.max(m, r.mib), 0),
      );
    const coresOf = (r: LoadResult) =>
      withGenerator(cpu.between(r.window.startMs, r.window.endMs), r.generatorCores);
    const typicalAt = (rate: number | undefined, seconds: number) =>
      load({
        url: ingestPath(ingest.port, "envelope"),
        kind: "typical",
        form: "envelope",
        gzip: false,
        seconds,
        rate,
      });
    const openLoopFigure = (rate: number, r: LoadResult): OpenLoopFigure => ({
      rate,
      achieved: Math.round(r.perSecond),
      ...r.latency,
      non2xx: r.non2xx,
      errors: r.errors,
      cores: coresOf(r),
      window: r.window,
    });

    console.log("closed loop: typical error, envelope, 64 connections ...");
    const before = processStats(pid);
    const closed = await typicalAt(undefined, SECONDS);
    const after = processStats(pid);
    const cpuPer1000 = ((after.cpuSeconds - before.cpuSeconds) / closed.ok) * 1000;

    /** The rising open-loop search against `url` (issue #16's rule, `stepPassed`). */
    /**
     * Rises by PEAK_STEP_FACTOR until a step fails (p99 over 1 s or errors),
     * then tries two rates between the last step that passed and the one that
     * failed, halving the gap each time: steps 25% apart read a peak up to a
     * quarter low.
     */
    const searchPeak = async (url: string, startRate: number) => {
      const steps: OpenLoopFigure[] = [];
      const stepSeconds = quick ? 3 : 5;
      const step = async (rate: number) => {
        const r = await load({
          url,
          kind: "typical",
          form: "envelope",
          gzip: false,
          seconds: stepSeconds,
          rate,
        });
        const figure = openLoopFigure(rate, r);
        steps.push(figure);
        console.log(
          `  offered ${rate}/s: ${figure.achieved}/s, p99 ${figure.p99} ms, non-2xx ${figure.non2xx}, errors ${figure.errors}; ${formatShares(figure.cores)}`,
        );
        // The queue of the step before must not hold the next one up.
        await sleep(1_000);
        return stepPassed(figure);
      };
      let passed = 0;
      let failed = 0;
      for (let rate = startRate; ; rate = Math.round(rate * PEAK_STEP_FACTOR)) {
        if (!(await step(rate))) {
          failed = rate;
          break;
        }
        passed = rate;
        if (rate > copy.perSecond * 3) break;
      }
      if (passed > 0 && failed > 0) await refineBetween(passed, failed, step);
      const peak = steps.filter(stepPassed).sort((a, b) => b.achieved - a.achieved)[0];
      return { steps, peak: peak ?? (steps[0] as OpenLoopFigure) };
    };
    console.log("peak: open loop, offered load rising until p99 > 1 s or errors ...");
    const { steps: peakSearch, peak: peakStep } = await searchPeak(
      ingestPath(ingest.port, "envelope"),
      Math.max(100, Math.round(copy.perSecond * 0.05)),
    );

    const openLoop: Record<string, OpenLoopFigure> = {};
    for (const share of [0.25, 0.5, 0.75]) {
      const rate = Math.max(1, Math.round(peakStep.achieved * share));
      console.log(`open loop at ${share * 100}% of peak (${rate}/s) ...`);
      openLoop[`${share * 100}%`] = openLoopFigure(rate, await typicalAt(rate, SECONDS));
    }

    const sizes = await pool.query(`
      SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('events')) AS events_bytes,
             pg_total_relation_size('event_ids') AS ids_bytes, (SELECT count(*) FROM events) AS events`);
    const storedPerEvent =
      (Number(sizes.rows[0].events_bytes) + Number(sizes.rows[0].ids_bytes)) /
      Number(sizes.rows[0].events);
    const sample = Array.from({ length: 200 }, (_, i) =>
      JSON.stringify(buildEvent("typical", newEventId(), i)),
    );
    const jsonBytes = sample.reduce((s, t) => s + Buffer.byteLength(t), 0) / sample.length;
    const gzipBytes = sample.reduce((s, t) => s + gzipSync(t).length, 0) / sample.length;
    figures.ingest = {
      closedLoop: {
        perSecond: Math.round(closed.perSecond),
        latency: closed.latency,
        cores: coresOf(closed),
      },
      peakSearch,
      peakPerSecond: peakStep.achieved,
      peakCores: peakStep.cores,
      ingestMicrosPerEventAtPeak: microsPerEvent(peakStep.cores?.ingest, peakStep.achieved),
      peakLatency: { p50: peakStep.p50, p99: peakStep.p99, max: peakStep.max },
      peakNon2xx: peakStep.non2xx + peakStep.errors,
      cpuSecondsPer1000Events: Number(cpuPer1000.toFixed(3)),
      peakRssMiB: Math.round(processStats(pid).peakRssBytes / 2 ** 20),
      rssAtPeakMiB: rssIn(peakStep.window),
      openLoop,
      storedBytesPerEvent: Math.round(storedPerEvent),
      typicalEventJsonBytes: Math.round(jsonBytes),
      typicalEventGzipBytes: Math.round(gzipBytes),
    };

    if (!quick) {
      const variants: Record<string, number> = {};
      for (const kind of ["small", "typical", "large"] as PayloadKind[]) {
        for (const form of ["envelope", "store"] as const) {
          for (const gzip of [false, true]) {
            const label = `${kind} ${form}${gzip ? " gzip" : ""}`;
            console.log(`peak: ${label} ...`);
            const r = await load({
              url: ingestPath(ingest.port, form),
              kind,
              form,
              gzip,
              seconds: 5,
            });
            variants[label] = Math.round(r.perSecond);
          }
        }
      }
      figures.peakByPayload = variants;
    }

    // Two ingest processes behind HAProxy (the deployment's balancer, same
    // settings as the rolling test), against one behind it: does the peak rise?
    console.log("peak behind HAProxy: one ingest, then two ...");
    const haproxyDir = join(root, "bench/results/haproxy");
    mkdirSync(haproxyDir, { recursive: true });
    const second = await startProcess(
      [...imageFlags, bin, "serve", "--role=ingest"],
      { ...env, ...imageEnv, LOG_LEVEL: "info", SLUICE_DRAIN_DELAY_MS: "0" },
      /"port":(\d+).*"msg":"sluice is serving"/,
    );
    cpu.add("ingest2", () => cpuSecondsOf(second.child.pid as number));
    // Warm its JIT as the first one was, or its first step is a cold start.
    await load({
      url: ingestPath(second.port, "envelope"),
      kind: "typical",
      form: "envelope",
      gzip: false,
      seconds: 2,
    });
    // The peak step's RSS also holds what the closed loop and the overload
    // step before it left: V8 keeps a heap it grew. This process has served
    // only its warm-up, so one step at the peak rate shows the peak's own.
    {
      const secondPid = second.child.pid as number;
      let maxMiB = 0;
      const timer = setInterval(() => {
        maxMiB = Math.max(maxMiB, statusMiB(secondPid, "VmRSS"));
      }, 200);
      const fresh = await load({
        url: ingestPath(second.port, "envelope"),
        kind: "typical",
        form: "envelope",
        gzip: false,
        seconds: 5,
        rate: peakStep.achieved,
      });
      clearInterval(timer);
      figures.ingest.freshRssAtPeakMiB = Math.round(maxMiB);
      console.log(
        `  fresh ingest at the peak rate (${peakStep.achieved}/s): ${fresh.perSecond.toFixed(0)}/s, p99 ${fresh.latency.p99} ms, RSS ${figures.ingest.freshRssAtPeakMiB} MiB`,
      );
      await sleep(1_000);
    }
    const balanced: Record<string, { steps: OpenLoopFigure[]; peak: OpenLoopFigure }> = {};
    for (const slots of [[ingest.port], [ingest.port, second.port]]) {
      const port = await freePort();
      const haproxy = await startHaproxy(haproxyDir, port, slots, children);
      cpu.add("haproxy", () => cpuSecondsOf(haproxy.pid as number));
      await sleep(1_000);
      const url = ingestPath(port, "envelope");
      console.log(` ${slots.length} ingest behind HAProxy:`);
      balanced[slots.length] = await searchPeak(url, Math.round(peakStep.achieved * 0.5));
      haproxy.kill("SIGTERM");
      await sleep(500);
    }
    second.child.kill("SIGTERM");
    cpu.remove("ingest2");
    cpu.remove("haproxy");
    const one = balanced[1] as { peak: OpenLoopFigure };
    const two = balanced[2] as { peak: OpenLoopFigure };
    figures.haproxy = {
      one: { peak: one.peak.achieved, cores: one.peak.cores },
      two: { peak: two.peak.achieved, cores: two.peak.cores },
      ratio: Number((two.peak.achieved / Math.max(1, one.peak.achieved)).toFixed(2)),
    };

    console.log("sustained: ingest and processing together ...");
    // The steps before left hundreds of thousands of events unprocessed (no
    // worker ran). Marking them processed with one UPDATE left as many dead
    // rows, and autovacuum cleaning them took Postgres's CPU from the steps
    // below; emptying the tables leaves nothing to clean. No issue exists
    // yet: the first step's events create them.
    await pool.query("TRUNCATE events, event_ids");
    await deleteQueueKeys(prefix);
    if (profile) rmSync(workerProfileDir, { recursive: true, force: true });
    const workerProfileArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${workerProfileDir}`] : [];
    const worker = await startProcess(
      [...imageFlags, ...workerProfileArgs, bin, "serve", "--role=worker"],
      { ...env, ...imageEnv, LOG_LEVEL: "info" },
      /"port":(\d+).*"msg":"sluice is serving"/,
    );
    cpu.add("worker", () => cpuSecondsOf(worker.child.pid as number));
    // From 30% of COPY (capped at 75% of the peak) down by 30% a step until
    // processing keeps up (lag p99 under 5 s): the figure is the rate it
    // sustains, not one it falls behind at. Steps 30% apart read it up to
    // that much low, so a full run then tries two rates between the last
    // that fell behind and the first that kept up, halving the gap each time
    // (as the peak search does); or, when 30% of COPY kept up, 40% to show
    // the headroom. Every step is in the JSON.
    const steps: SustainedFigure[] = [];
    const keptUp = (step: SustainedFigure) => step.lagSeconds.p99 < 5;
    const sustainedAt = async (rate: number, seconds: number) => {
      console.log(`sustained: offered ${rate}/s (${ratio(rate, copy.perSecond)} of COPY) ...`);
      const step = await sustainedStep(
        pool,
        cpu,
        ingestPath(ingest.port, "envelope"),
        rate,
        seconds,
      );
      steps.push(step);
      return keptUp(step);
    };
    let rate = Math.max(1, Math.round(Math.min(copy.perSecond * 0.3, peakStep.achieved * 0.75)));
    let behind = 0;
    for (let tries = 0; tries < 4; tries++) {
      if (await sustainedAt(rate, quick ? 5 : 20)) break;
      behind = rate;
      rate = Math.max(1, Math.round(rate * 0.7));
    }
    const kept = keptUp(steps.at(-1) as SustainedFigure) ? rate : 0;
    const higher = Math.round(Math.min(copy.perSecond * 0.4, peakStep.achieved * 0.9));
    if (!quick && kept > 0 && behind > 0)
      await refineBetween(kept, behind, (between) => sustainedAt(between, 20));
    else if (!quick && kept > 0 && higher > kept) await sustainedAt(higher, 20);
    figures.sustainedSteps = steps;
    figures.sustained =
      steps.filter(keptUp).sort((a, b) => b.processedPerSecond - a.processedPerSecond)[0] ??
      steps[0];
    const workerExited = new Promise((resolve) => worker.child.once("exit", resolve));
    worker.child.kill("SIGTERM");
    await workerExited;
    const ingestExited = new Promise((resolve) => ingest.child.once("exit", resolve));
    ingest.child.kill("SIGTERM");
    await ingestExited;

    cpu.stop();
    clearInterval(rssTimer);
    await postgresCpu.stop();
    if (profile) {
      // The profile's clock is CLOCK_MONOTONIC in µs (process.hrtime's), the window's epoch ms.
      const monotonicOffsetUs = Date.now() * 1000 - Number(process.hrtime.bigint() / 1000n);
      figures.ingest.peakStages = cpuByStage(profileDir, {
        startUs: peakStep.window.startMs * 1000 - monotonicOffsetUs,
        endUs: peakStep.window.endMs * 1000 - monotonicOffsetUs,
      });
    }
    report(figures, copy.perSecond, http.perSecond);
    if (profile)
      console.log(
        `\ningest CPU profile of the whole run, self time (${profileDir}):\n${summarizeCpuProfiles(profileDir, 25).join("\n")}` +
          `\n\nworker CPU profile of the sustained steps, self time (${workerProfileDir}):\n${summarizeCpuProfiles(workerProfileDir, 25).join("\n")}`,
      );
    mkdirSync(join(root, "bench/results"), { recursive: true });
    writeFileSync(join(root, "bench/results/latest.json"), `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await pool.end();
    await sleep(500);
    await deleteQueueKeys(prefix);
    await db.drop();
  }
}

/** CPU shares with the load generator's own beside them (null stays null). */
const withGenerator = (shares: CpuShares | null, generator: number) =>
  shares && { ...shares, generator };

/**
 * Tries two rates between `passed` (a rate whose step passed) and `failed`
 * (one whose step failed), each the geometric mean of the closest pair so
 * far, so that steps far apart do not read a limit low. `passes` runs a step.
 */
async function refineBetween(
  passed: number,
  failed: number,
  passes: (rate: number) => Promise<boolean>,
) {
  for (let refine = 0; refine < 2; refine++) {
    const rate = Math.round(Math.sqrt(passed * failed));
    if (await passes(rate)) passed = rate;
    else failed = rate;
  }
}

/**
 * Offers `rate` typical events/s to `url` (open loop) for `seconds`, waits
 * up to 2 minutes for processing to drain, and measures it: processing
 * throughput while the load ran, lag (received to processed) and the CPU
 * `cpu` sampled in the load's window.
 */
async function sustainedStep(
  pool: pg.Pool,
  cpu: CpuSampler,
  url: string,
  rate: number,
  seconds: number,
): Promise<SustainedFigure> {
  const windowStart = new Date();
  const sustained = await load({
    url,
    kind: "typical",
    form: "envelope",
    gzip: false,
    seconds,
    rate,
  });
  const windowEnd = new Date();
  const drainStart = Date.now();
  for (;;) {
    const open = await pool.query(
      "SELECT count(*)::int AS n FROM events WHERE processed_at IS NULL",
    );
    if (open.rows[0].n === 0 || Date.now() - drainStart > 120_000) break;
    await sleep(200);
  }
  const lag = await pool.query(
    `WITH arrivals AS (
       SELECT min(received_at) AS first, max(received_at) AS last,
              min(received_at) + (max(received_at) - min(received_at)) / 4 AS steady_from
         FROM events WHERE received_at >= $1 AND received_at <= $2)
     SELECT count(*)::int AS n,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)) AS p99,
            max(extract(epoch FROM processed_at - received_at)) AS max,
            extract(epoch FROM a.last - a.first) AS load_seconds,
            count(*) FILTER (WHERE processed_at <= a.last)::int AS processed_during_load,
            extract(epoch FROM a.last - a.steady_from) AS steady_seconds,
            count(*) FILTER (WHERE processed_at > a.steady_from AND processed_at <= a.last)::int
              AS processed_steady
       FROM events, arrivals a WHERE received_at >= $1 AND received_at <= $2
      GROUP BY a.first, a.last, a.steady_from`,
    [windowStart, windowEnd],
  );
  const l = lag.rows[0];
  // Processing throughput in the steady state: events processed in the last
  // three quarters of the load (the first quarter fills the pipeline), over
  // that time. Whether processing keeps up or falls behind, that is the rate
  // it completes events at. Counting instead the events processed before the
  // last arrival, over the whole load, leaves out the last lag's worth of
  // events that were still in flight: that read low by lag / load time
  // (about 20% at a 3.7 s lag over 20 s; bench/RESULTS.md, session 15).
  return {
    offeredPerSecond: rate,
    acknowledgedPerSecond: Math.round(sustained.perSecond),
    processedPerSecond: Math.round(l.processed_steady / Number(l.steady_seconds)),
    processedBeforeLastArrivalPerSecond: Math.round(
      l.processed_during_load / Number(l.load_seconds),
    ),
    lagSeconds: {
      p50: Number(Number(l.p50).toFixed(3)),
      p99: Number(Number(l.p99).toFixed(3)),
      max: Number(Number(l.max).toFixed(3)),
    },
    drainedAfterSeconds: Number(((Date.now() - drainStart) / 1000).toFixed(1)),
    cores: withGenerator(
      cpu.between(sustained.window.startMs, sustained.window.endMs),
      sustained.generatorCores,
    ),
  };
}

/**
 * `--sustained=`: ingest and the worker at fixed offered rates, 20 s each
 * (`--quick` 5 s): processed events/s, lag, and each process's CPU and
 * µs per processed event; `--profile` profiles the worker. For comparing
 * one change to processing with the next.
 */
async function measureSustained(
  rates: number[],
  run: {
    bin: string;
    env: Record<string, string>;
    nodeFlags: string[];
    ingestPath: (port: number, form: "envelope" | "store") => string;
    pool: pg.Pool;
    databaseUrl: string;
  },
) {
  const ingest = await startProcess(
    [...run.nodeFlags, run.bin, "serve", "--role=ingest"],
    { ...run.env, LOG_LEVEL: "info", SLUICE_DRAIN_DELAY_MS: "0" },
    /"port":(\d+).*"msg":"sluice is serving"/,
  );
  if (profile) rmSync(workerProfileDir, { recursive: true, force: true });
  const profileArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${workerProfileDir}`] : [];
  const worker = await startProcess(
    [...run.nodeFlags, ...profileArgs, run.bin, "serve", "--role=worker"],
    { ...run.env, LOG_LEVEL: "info" },
    /"port":(\d+).*"msg":"sluice is serving"/,
  );
  const url = run.ingestPath(ingest.port, "envelope");
  // Warm both JITs, then start from an empty backlog.
  await sustainedStep(run.pool, new CpuSampler({}), url, 500, 3);
  const postgresCpu = await startPostgresCpu(run.databaseUrl);
  const redisCpu = redisSecondsOfMachine();
  const cpu = new CpuSampler({
    ingest: () => cpuSecondsOf(ingest.child.pid as number),
    worker: () => cpuSecondsOf(worker.child.pid as number),
    postgres: postgresCpu.read,
    ...(redisCpu ? { redis: redisCpu } : {}),
    idle: idleSecondsOfMachine,
    steal: stealSecondsOfMachine,
  });
  for (const rate of rates) {
    const step = await sustainedStep(run.pool, cpu, url, rate, quick ? 5 : 20);
    const perEvent = (name: string) =>
      microsPerEvent(step.cores?.[name], step.processedPerSecond) ?? "n/a";
    console.log(
      `offered ${rate}/s: ${step.processedPerSecond} processed/s (${step.processedBeforeLastArrivalPerSecond}/s processed before the last arrival), lag p50 ${step.lagSeconds.p50} s, p99 ${step.lagSeconds.p99} s; ${formatShares(step.cores)}; per processed event: ingest ${perEvent("ingest")} µs, worker ${perEvent("worker")} µs, postgres ${perEvent("postgres")} µs`,
    );
  }
  cpu.stop();
  await postgresCpu.stop();
  for (const child of [worker.child, ingest.child]) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  if (profile)
    console.log(
      `\nworker CPU profile, self time (${workerProfileDir}):\n${summarizeCpuProfiles(workerProfileDir, 25).join("\n")}`,
    );
}

/** `--rates=`: ingest alone at fixed open-loop rates; see the file's docstring. */
async function measureRates(
  rates: number[],
  bin: string,
  env: Record<string, string>,
  nodeFlags: string[],
  ingestPath: (port: number, form: "envelope" | "store") => string,
) {
  if (profile) rmSync(profileDir, { recursive: true, force: true });
  const profileArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const ingest = await startProcess(
    [...nodeFlags, ...profileArgs, bin, "serve", "--role=ingest"],
    { ...env, LOG_LEVEL: "info", SLUICE_DRAIN_DELAY_MS: "0" },
    /"port":(\d+).*"msg":"sluice is serving"/,
  );
  const pid = ingest.child.pid as number;
  const at = (rate: number | undefined, seconds: number) =>
    load({
      url: ingestPath(ingest.port, "envelope"),
      kind: "typical",
      form: "envelope",
      gzip: false,
      seconds,
      rate,
    });
  await at(undefined, 2);
  let last: LoadResult | null = null;
  for (const rate of rates) {
    const before = cpuSecondsOf(pid);
    const stealBefore = stealSecondsOfMachine();
    const r = await at(rate, SECONDS);
    const cpuSeconds = cpuSecondsOf(pid) - before;
    const steal =
      (stealSecondsOfMachine() - stealBefore) / ((r.window.endMs - r.window.startMs) / 1000);
    last = r;
    console.log(
      `offered ${rate}/s: ${Math.round(r.perSecond)}/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}; ingest ${Math.round((cpuSeconds * 1e6) / Math.max(1, r.ok))} µs CPU/event (whole step, generator ${Math.round(r.generatorCores * 100)}%, stolen by the host ${Math.round(steal * 100)}%)`,
    );
    await sleep(1_000);
  }
  console.log(`ingest peak RSS ${Math.round(processStats(pid).peakRssBytes / 2 ** 20)} MiB`);
  const exited = new Promise((resolve) => ingest.child.once("exit", resolve));
  ingest.child.kill("SIGTERM");
  await exited;
  if (profile && last) {
    const monotonicOffsetUs = Date.now() * 1000 - Number(process.hrtime.bigint() / 1000n);
    for (const s of cpuByStage(profileDir, {
      startUs: last.window.startMs * 1000 - monotonicOffsetUs,
      endUs: last.window.endMs * 1000 - monotonicOffsetUs,
    }))
      console.log(`  ${s.stage.padEnd(34)} ${(s.share * 100).toFixed(1).padStart(5)}%`);
  }
}

function report(f: Figures, copyRate: number, httpRate: number) {
  const { ingest: i, sustained: s, postgres, limits } = f;
  if (!i || !s || !postgres || !limits) throw new Error("the run did not measure every figure");
  const lines = [
    "",
    `Sluice benchmark (${f.mode}) on ${f.machine.cpus} cores, ${f.machine.memoryGiB} GiB, Node ${f.machine.node}, Postgres ${postgres.version} (synchronous_commit ${postgres.synchronous_commit})`,
    "",
    `limit: raw durable COPY              ${Math.round(copyRate)} events/s (${limits.copyBytesPerRow} bytes/row; CPU ${formatShares(limits.copyCores)})`,
    `limit: HTTP read-and-discard         ${Math.round(httpRate)} requests/s`,
    `closed loop (64 connections)         ${i.closedLoop.perSecond} events/s, p99 ${i.closedLoop.latency.p99} ms; CPU ${formatShares(i.closedLoop.cores)}`,
    `ingest peak (open loop, rising)      ${i.peakPerSecond} events/s = ${ratio(i.peakPerSecond, copyRate)} of COPY, ${ratio(i.peakPerSecond, httpRate)} of HTTP (target >= 35% of COPY), p99 ${i.peakLatency.p99} ms`,
    `  CPU at peak                        ${formatShares(i.peakCores)}`,
    `  ingest CPU per event at peak       ${i.ingestMicrosPerEventAtPeak ?? "n/a"} µs (target <= 200)`,
    ...(i.peakStages ?? []).map(
      (s) =>
        `    ${s.stage.padEnd(34)} ${(s.share * 100).toFixed(1).padStart(5)}%${i.ingestMicrosPerEventAtPeak ? ` ~${Math.round(s.share * i.ingestMicrosPerEventAtPeak)} µs/event` : ""}`,
    ),
    ...Object.entries(i.openLoop).map(
      ([share, r]) =>
        `latency at ${share.padEnd(4)} of peak (${r.rate}/s)  p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms${share === "50%" ? " (target p99 <= 50 ms)" : ""}; CPU ${formatShares(r.cores)}`,
    ),
    `ingest CPU per 1,000 events          ${i.cpuSecondsPer1000Events} s`,
    `ingest RSS at peak                   ${i.rssAtPeakMiB} MiB in the peak step (target <= 200); high-water mark ${i.peakRssMiB} MiB (with the closed loop and the overload step past the peak)`,
    ...(i.freshRssAtPeakMiB
      ? [
          `  in a fresh process                 ${i.freshRssAtPeakMiB} MiB (one step at the peak rate, no overload step before it)`,
        ]
      : []),
    `stored bytes per typical event       ${i.storedBytesPerEvent} (payloads ${f.payloadStorage}; JSON ${i.typicalEventJsonBytes}, gzipped ${i.typicalEventGzipBytes}; target <= gzipped)`,
    ...(f.sustainedSteps ?? [s]).map(
      (step) =>
        `sustained end to end (offered ${step.offeredPerSecond}/s)  ${step.processedPerSecond} processed/s = ${ratio(step.processedPerSecond, copyRate)} of COPY (before the last arrival: ${step.processedBeforeLastArrivalPerSecond}/s); lag p50 ${step.lagSeconds.p50} s, p99 ${step.lagSeconds.p99} s, max ${step.lagSeconds.max} s${step === s ? " (the figure; target >= 25% of COPY, lag < 5 s)" : ""}; CPU ${formatShares(step.cores)}`,
    ),
  ];
  if (f.haproxy) {
    const h = f.haproxy;
    lines.push(
      `behind HAProxy, one ingest          peak ${h.one.peak} events/s; CPU ${formatShares(h.one.cores)}`,
      `behind HAProxy, two ingest          peak ${h.two.peak} events/s = ${h.ratio}x one; CPU ${formatShares(h.two.cores)}`,
    );
  }
  if (f.peakByPayload) {
    lines.push("", "peak by payload (events/s):");
    for (const [label, rate] of Object.entries(f.peakByPayload))
      lines.push(`  ${label.padEnd(24)} ${rate}`);
  }
  console.log(lines.join("\n"));
}

await main();
