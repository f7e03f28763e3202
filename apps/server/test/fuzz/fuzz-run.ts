import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { createTestDatabase, type TestDatabase } from "@sluice/db/testing";
import {
  type Corpus,
  type FuzzRequest,
  type FuzzTarget,
  generateInput,
  loadCorpus,
  warmupInputs,
} from "./mutators.ts";

const run = promisify(execFile);
const root = new URL("../../../../", import.meta.url).pathname;
const bin = join(root, "apps/server/bin/sluice.js");

export type FuzzOptions = {
  /** Inputs to send. */
  count: number;
  /** Index of the first input (`--from 1234 --count 1` sends input 1234 of the seed alone). */
  from: number;
  seed: number;
  /** Stop after this long even if `count` is not reached (ms). */
  timeLimitMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** A running Sluice to target instead of spawning one (127.0.0.1 only); needs `dsn`. */
  url?: string;
  /** DSN of a project on `url`. */
  dsn?: string;
  /** API token on `url` (API inputs are skipped without one). */
  token?: string;
  /** Process id of the server at `url`, for its RSS (Linux /proc). */
  pid?: number;
  /** A `/healthz` answer slower than this is a violation (ms). */
  healthzLimitMs: number;
  /** Server RSS above this is a violation (MiB). */
  rssLimitMiB: number;
  /** No answer within this is a violation (ms). */
  requestTimeoutMs: number;
  /** Where the first failing inputs are written. */
  failureDir: string;
  /** Failing inputs kept on disk. */
  keepFailures: number;
  progress?: (line: string) => void;
};

export const defaultFuzzOptions: FuzzOptions = {
  count: 20_000,
  from: 0,
  seed: 1,
  timeLimitMs: 10 * 60_000,
  concurrency: 8,
  healthzLimitMs: 100,
  rssLimitMiB: 384,
  requestTimeoutMs: 30_000,
  failureDir: join(tmpdir(), "sluice-fuzz-failures"),
  keepFailures: 10,
};

type Violation = {
  index: number;
  kind: string;
  reason: string;
  status?: number;
  detail?: string;
  file?: string;
};

export type FuzzReport = {
  seed: number;
  inputs: number;
  seconds: number;
  byStatus: Record<string, number>;
  /** 429/503 with Retry-After for bytes in flight: allowed, counted apart. */
  shed: number;
  /** Answers to the stateful API probes, by probe and status. */
  probes: Record<string, number>;
  /** Size of one `/metrics` scrape after the run. */
  metrics: { bytes: number; series: number } | null;
  /** Requests that got a connection reset instead of an answer. */
  resets: number;
  resetSamples: string[];
  /** Input tags most over-represented among requests in flight during slow `/healthz` polls. */
  slowHealthzSuspects: string[];
  /** 4xx answers whose body is not `{"detail": "..."}`. */
  fourXxWithoutDetail: number;
  worstMs: number;
  p99Ms: number;
  healthz: { polls: number; worstMs: number; p99Ms: number; over: number };
  peakRssMiB: number | null;
  /** Server RSS once the inputs are answered (MiB): well under the peak unless memory is kept. */
  endRssMiB: number | null;
  serverErrorLogs: number;
  serverErrorSamples: string[];
  violations: Violation[];
  failureDir: string;
};

type Answer = {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
  /** Wall-clock start and end (ms since the epoch), to match against `/healthz` polls. */
  startedAt: number;
  endedAt: number;
};

/** Sends one request over `agent`; resolves with the answer or rejects on a socket error or timeout. */
function send(
  base: URL,
  agent: http.Agent,
  request: FuzzRequest,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const startedAt = Date.now();
    const headers: Record<string, string> = { ...request.headers };
    if (request.body) headers["content-length"] = String(request.body.length);
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: request.method,
        path: request.path,
        headers,
        agent,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          if (size < 64 * 1024) chunks.push(chunk);
          size += chunk.length;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            ms: performance.now() - started,
            startedAt,
            endedAt: Date.now(),
          }),
        );
        res.on("error", reject);
      },
    );
    // The request reports socket errors; a write failing after the answer arrived is no news.
    req.on("socket", (socket) => {
      if (quietSockets.has(socket)) return;
      quietSockets.add(socket);
      socket.on("error", () => {});
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error) => {
      // A kept-alive socket the server closed after its last answer: the
      // request never reached it, so send it again on a new connection.
      if (req.reusedSocket && agent !== freshAgent) {
        send(base, freshAgent, request, timeoutMs).then(resolve, reject);
      } else {
        const written = req.writableFinished ? "body sent" : "body not all sent";
        reject(
          new Error(
            `${error.message} (${agent === freshAgent ? "retried on a new connection" : "new connection"}, ${written})`,
          ),
        );
      }
    });
    req.end(request.body ?? undefined);
  });
}

const freshAgent = new http.Agent({ keepAlive: false });
const quietSockets = new WeakSet<object>();

/** A fresh server's scrape is tens of KiB; label values from client input grow it without bound. */
const MAX_METRICS_BYTES = 1024 * 1024;

async function scrape(url: string): Promise<{ bytes: number; series: number } | null> {
  try {
    const text = await (await fetch(url)).text();
    const series = text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).length;
    return { bytes: Buffer.byteLength(text), series };
  } catch {
    return null;
  }
}

const SHED = /bytes in flight|retry later|too many/i;
const RESET = /ECONNRESET|EPIPE|socket hang up/;
/** Connection resets above this share of inputs are a violation, not the odd lost early answer. */
const MAX_RESET_SHARE = 0.01;

function detailOf(body: string): string | null {
  try {
    const value = JSON.parse(body);
    return typeof value?.detail === "string" ? value.detail : null;
  } catch {
    return null;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

/** Polls `/healthz` from its own thread, so the fuzzer's own work never shows as server latency. */
function startHealthzPoller(url: string, intervalMs: number) {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const http = require("node:http");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let stop = false;
    parentPort.on("message", () => { stop = true; });
    const once = () => new Promise((resolve) => {
      const started = performance.now();
      const startedAt = Date.now();
      const req = http.get(workerData.url + "/healthz", { agent, timeout: 10000 }, (res) => {
        res.resume();
        res.on("end", () => resolve({ ms: performance.now() - started, status: res.statusCode, startedAt }));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => resolve({ ms: performance.now() - started, status: 0, error: e.message, startedAt }));
    });
    (async () => {
      while (!stop) {
        parentPort.postMessage(await once());
        await new Promise((r) => setTimeout(r, workerData.intervalMs));
      }
      agent.destroy();
      parentPort.postMessage("done");
    })();
  `;
  const worker = new Worker(code, { eval: true, workerData: { url, intervalMs } });
  const samples: { ms: number; status: number; error?: string; startedAt: number }[] = [];
  const done = new Promise<void>((resolve) => {
    worker.on("message", (m) => {
      if (m === "done") resolve();
      else samples.push(m);
    });
    worker.on("exit", () => resolve());
  });
  return {
    samples,
    async stop() {
      worker.postMessage("stop");
      await done;
      await worker.terminate();
    },
  };
}

function rssMiB(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    if (!rss) return null;
    return { rss: Number(rss[1]) / 1024, hwm: hwm ? Number(hwm[1]) / 1024 : 0 };
  } catch {
    return null;
  }
}

type Server = {
  url: string;
  /** `/metrics` on its own port, when known. */
  metricsUrl: string | null;
  child: ChildProcess | null;
  pid: number | null;
  target: FuzzTarget;
  log: () => string;
  errorLogs: () => { count: number; samples: string[] };
  stop(): Promise<void>;
};

async function sluiceCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [bin, ...args], {
    env: { ...env, LOG_LEVEL: "warn" },
  });
  return stdout;
}

/**
 * Starts `sluice serve --role=all` as a child process on a fresh database
 * (jobs in process, no Redis, metrics on a free port), with projects
 * `fuzz/target` and `fuzz/other` and an API token made by the CLI.
 */
async function startServer(): Promise<Server> {
  const db: TestDatabase = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), "sluice-fuzz-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    SLUICE_DATA_DIR: dataDir,
    SLUICE_METRICS_PORT: "0",
    // A budget well under the RSS limit, so the bound on RSS is the budget's.
    SLUICE_MAX_BYTES_IN_FLIGHT: String(64 * 1024 * 1024),
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
  };
  delete env.REDIS_URL;
  delete env.SLUICE_CONFIG_FILE;
  let child: ChildProcess | null = null;
  try {
    const target = JSON.parse(
      await sluiceCli(env, "projects", "create", "target", "--org", "fuzz", "--json"),
    );
    const other = JSON.parse(
      await sluiceCli(env, "projects", "create", "other", "--org", "fuzz", "--json"),
    );
    const { token } = JSON.parse(await sluiceCli(env, "tokens", "create", "--json"));
    const spawned = spawn(process.execPath, [bin, "serve", "--role=all"], {
      env: { ...env, LOG_LEVEL: "info" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = spawned;
    // A fuzzer killed mid-run must not leave its server behind.
    const killChild = () => spawned.kill("SIGKILL");
    process.once("exit", killChild);
    spawned.once("exit", () => process.off("exit", killChild));
    let tail = "";
    let errorCount = 0;
    const errorSamples: string[] = [];
    let pending = "";
    let metricsPort: number | null = null;
    const port = await new Promise<number>((resolve, reject) => {
      spawned.stderr?.on("data", (chunk: Buffer) => {
        const textChunk = chunk.toString("utf8");
        tail = (tail + textChunk).slice(-256 * 1024);
        pending += textChunk;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          const serving = /"port":(\d+).*"msg":"sluice is serving"/.exec(line);
          if (serving) {
            metricsPort = Number(/"metricsPort":(\d+)/.exec(line)?.[1] ?? 0) || null;
            resolve(Number(serving[1]));
          }
          if (/"level":(50|60)/.test(line)) {
            errorCount += 1;
            if (errorSamples.length < 5) errorSamples.push(line.slice(0, 800));
          }
        }
      });
      spawned.once("exit", (code) =>
        reject(new Error(`sluice serve exited with ${code}:\n${tail.slice(-3000)}`)),
      );
    });
    const url = `http://127.0.0.1:${port}`;
    return {
      url,
      metricsUrl: metricsPort ? `http://127.0.0.1:${metricsPort}/metrics` : null,
      child: spawned,
      pid: spawned.pid ?? null,
      target: {
        projectId: Number(target.id),
        publicKey: new URL(target.dsn).username,
        otherProjectId: Number(other.id),
        otherPublicKey: new URL(other.dsn).username,
        org: "fuzz",
        project: "target",
        token,
      },
      log: () => tail,
      errorLogs: () => ({ count: errorCount, samples: errorSamples }),
      async stop() {
        if (spawned.exitCode === null && spawned.signalCode === null) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => spawned.kill("SIGKILL"), 30_000);
            spawned.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            spawned.kill("SIGTERM");
          });
        }
        await db.drop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    child?.kill("SIGKILL");
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

function assertLocal(url: string): URL {
  const parsed = new URL(url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname)) {
    throw new Error(`the fuzzer only targets 127.0.0.1, not ${parsed.hostname}`);
  }
  return parsed;
}

async function existingServer(options: FuzzOptions): Promise<Server> {
  const url = assertLocal(options.url as string).origin;
  if (!options.dsn) throw new Error("--url needs --dsn (a project's DSN on that server)");
  const dsn = new URL(options.dsn);
  const projectId = Number(dsn.pathname.split("/").filter(Boolean).at(-1));
  return {
    url,
    metricsUrl: null,
    child: null,
    pid: options.pid ?? null,
    target: {
      projectId,
      publicKey: dsn.username,
      otherProjectId: projectId + 1,
      otherPublicKey: "0".repeat(32),
      org: "sluice",
      project: "default",
      token: options.token ?? null,
    },
    log: () => "",
    errorLogs: () => ({ count: 0, samples: [] }),
    async stop() {},
  };
}

function saveFailure(
  dir: string,
  index: number,
  request: FuzzRequest,
  violation: Violation,
): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `input-${String(index).padStart(6, "0")}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        violation,
        request: {
          method: request.method,
          path: request.path,
          headers: request.headers,
          body_b64: request.body?.toString("base64") ?? null,
        },
      },
      null,
      2,
    )}\n`,
  );
  return file;
}

/** Names a release file may have: non-Latin-1, controls, NUL, quotes, bidi, long. */
const ODD_FILE_NAMES = [
  "~/app.js",
  "~/ünïcödé-файл-文件.js",
  "~/emoji-🙂.js.map",
  "~/tab\there.js",
  "~/new\nline.js",
  "~/nul\u0000.js",
  '~/"quoted";.js',
  "~/\u202egnp.js",
  "~/percent%E0%A4%A.js",
  `~/${"x".repeat(2100)}.js`,
  "~/lone\ud800.js",
];

type Check = (index: number, request: FuzzRequest, answer: Answer) => void;

/**
 * Stateful API sequences the one-request inputs cannot reach: a release file
 * uploaded under each odd name, listed, downloaded and renamed; and a release
 * of one project deleted through another project's path, which must leave it.
 */
async function runProbes(
  base: URL,
  agent: http.Agent,
  target: FuzzTarget,
  timeoutMs: number,
  check: Check,
  violate: (
    index: number,
    request: FuzzRequest | null,
    v: Omit<Violation, "index" | "kind">,
  ) => void,
): Promise<{ sent: number; byKind: Record<string, number> }> {
  const byKind: Record<string, number> = {};
  if (!target.token) return { sent: 0, byKind };
  const auth = { authorization: `Bearer ${target.token}` };
  let index = -1000;
  let sent = 0;
  const call = async (kind: string, method: string, path: string, body?: Buffer, type?: string) => {
    const request: FuzzRequest = {
      kind,
      method,
      path,
      headers: { ...auth, ...(type ? { "content-type": type } : {}) },
      body: body ?? null,
    };
    index -= 1;
    sent += 1;
    try {
      const answer = await send(base, agent, request, timeoutMs);
      check(index, request, answer);
      const label = `${kind.split(" ")[0]} ${answer.status}`;
      byKind[label] = (byKind[label] ?? 0) + 1;
      return answer;
    } catch (error) {
      violate(index, request, { reason: `no answer: ${(error as Error).message}` });
      return null;
    }
  };
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const orgReleases = `/api/0/organizations/${target.org}/releases/`;
  for (const [i, name] of ODD_FILE_NAMES.entries()) {
    const version = `fuzz-probe-${i}`;
    await call(
      "probe:release",
      "POST",
      orgReleases,
      json({ version, projects: [target.project] }),
      "application/json",
    );
    const files = `${orgReleases}${version}/files/`;
    const boundary = "fuzzboundary7MA4YWxkTrZu0gW";
    const safeName = name.toWellFormed();
    const form = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n${safeName}\r\n`,
      ),
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.js"\r\nContent-Type: application/javascript\r\n\r\n`,
      ),
      Buffer.from("console.log(1);\n"),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const uploaded = await call(
      `probe:file-upload ${JSON.stringify(name.slice(0, 40))}`,
      "POST",
      files,
      form,
      `multipart/form-data; boundary=${boundary}`,
    );
    await call("probe:file-list", "GET", files);
    let id: string | null = null;
    try {
      id = uploaded && uploaded.status < 300 ? String(JSON.parse(uploaded.body).id) : null;
    } catch {}
    if (id) {
      await call(
        `probe:file-download ${JSON.stringify(name.slice(0, 40))}`,
        "GET",
        `${files}${id}/?download=1`,
      );
      await call(
        "probe:file-rename",
        "PUT",
        `${files}${id}/`,
        json({ name: `${safeName}.renamed\u0000` }),
        "application/json",
      );
    }
  }
  const version = "fuzz-probe-owned";
  await call(
    "probe:release",
    "POST",
    orgReleases,
    json({ version, projects: [target.project] }),
    "application/json",
  );
  await call(
    "probe:release-delete-other-project",
    "DELETE",
    `/api/0/projects/${target.org}/other/releases/${version}/`,
  );
  const still = await call("probe:release-after", "GET", `${orgReleases}${version}/`);
  if (still && still.status !== 200) {
    violate(index, null, {
      reason: `a release of project ${target.project} is gone (${still.status}) after DELETE through project "other"`,
    });
  }
  return { sent, byKind };
}

/**
 * Runs the black-box fuzzer: spawns Sluice on a fresh database (or targets
 * `options.url`), sends `options.count` generated inputs with bounded
 * concurrency, and checks that every answer is 2xx/4xx (429/503 with
 * Retry-After only when shedding load), that `/healthz` (polled from its
 * own thread) answers within `healthzLimitMs`, that the server's RSS stays
 * under `rssLimitMiB`, and that it never dies. Never throws for a violation:
 * they are in the report, the first few inputs saved under `failureDir`.
 */
export async function runFuzz(partial: Partial<FuzzOptions> = {}): Promise<FuzzReport> {
  const options: FuzzOptions = { ...defaultFuzzOptions, ...partial };
  const say = options.progress ?? (() => {});
  const corpus: Corpus = loadCorpus();
  const server = options.url ? await existingServer(options) : await startServer();
  const failureDir = join(options.failureDir, `seed-${options.seed}-${Date.now()}`);
  const violations: Violation[] = [];
  const byStatus: Record<string, number> = {};
  const latencies: number[] = [];
  /** Every answer's span, to name what was in flight when /healthz was slow. */
  const spans: Span[] = [];
  let shed = 0;
  let resets = 0;
  const resetSamples: string[] = [];
  let fourXxWithoutDetail = 0;
  let saved = 0;
  let died = false;
  let peakRss = 0;
  let endRss: number | null = null;
  let started = Date.now();
  const base = new URL(server.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });

  const violate = (
    index: number,
    request: FuzzRequest | null,
    v: Omit<Violation, "index" | "kind">,
  ) => {
    const violation: Violation = { index, kind: request?.kind ?? "server", ...v };
    if (request && saved < options.keepFailures) {
      violation.file = saveFailure(failureDir, index, request, violation);
      saved += 1;
    }
    if (violations.length < 1000) violations.push(violation);
  };

  let finished = false;
  server.child?.once("exit", (code, signal) => {
    if (finished) return;
    died = true;
    violate(-1, null, { reason: `server exited (code ${code}, signal ${signal})` });
  });
  const rssTimer =
    server.pid !== null
      ? setInterval(() => {
          const rss = rssMiB(server.pid as number);
          if (rss) peakRss = Math.max(peakRss, rss.rss, rss.hwm);
        }, 100)
      : null;

  const check: Check = (index, request, answer) => {
    latencies.push(answer.ms);
    spans.push({
      index,
      kind: request.kind,
      startedAt: answer.startedAt,
      endedAt: answer.endedAt,
      ms: answer.ms,
    });
    byStatus[answer.status] = (byStatus[answer.status] ?? 0) + 1;
    const detail = detailOf(answer.body);
    const isShed =
      (answer.status === 429 || answer.status === 503) &&
      answer.headers["retry-after"] !== undefined &&
      SHED.test(detail ?? "");
    if (request.kind.startsWith("canary:") && answer.status !== 200) {
      violate(index, request, {
        reason: `an unmodified SDK capture was answered ${answer.status}: earlier input broke the project`,
        status: answer.status,
        detail: (detail ?? answer.body).slice(0, 300),
      });
    } else if (isShed) shed += 1;
    else if (
      answer.status < 200 ||
      answer.status >= 500 ||
      (answer.status >= 300 && answer.status < 400)
    ) {
      violate(index, request, {
        reason: `answered ${answer.status}`,
        status: answer.status,
        detail: (detail ?? answer.body).slice(0, 300),
      });
    } else if (answer.status >= 400 && detail === null) fourXxWithoutDetail += 1;
  };
  const warmUp = async () => {
    for (const [i, request] of warmupInputs(corpus, server.target).entries()) {
      const answer = await send(base, agent, request, options.requestTimeoutMs).catch(() => null);
      if (answer && answer.status >= 500) {
        violate(-2 - i, request, {
          reason: `warm-up answered ${answer.status}`,
          status: answer.status,
          detail: answer.body.slice(0, 300),
        });
      }
    }
  };
  let healthz: ReturnType<typeof startHealthzPoller> | null = null;
  let probes: { sent: number; byKind: Record<string, number> } = { sent: 0, byKind: {} };
  let next = options.from;
  let sent = 0;
  const end = options.from + options.count;
  const worker = async () => {
    while (!died && next < end && Date.now() - started < options.timeLimitMs) {
      const index = next++;
      const request = generateInput(corpus, server.target, options.seed, index);
      let answer: Answer;
      try {
        answer = await send(base, agent, request, options.requestTimeoutMs);
      } catch (error) {
        sent += 1;
        const message = (error as Error).message;
        if (died) continue;
        if (RESET.test(message)) {
          // The server answered early and closed while the body was still coming (its
          // drain gives up after a while); the answer can be lost on the way. Counted apart.
          resets += 1;
          if (resetSamples.length < 5)
            resetSamples.push(`#${index} [${request.kind.slice(0, 100)}] ${message}`);
        } else {
          byStatus.error = (byStatus.error ?? 0) + 1;
          violate(index, request, { reason: `no answer: ${message}` });
        }
        continue;
      }
      sent += 1;
      check(index, request, answer);
      if (sent % 2000 === 0) {
        say(
          `${sent} inputs, ${violations.length} violations, ${((Date.now() - started) / 1000).toFixed(0)} s${
            server.pid !== null
              ? `, server RSS ${rssMiB(server.pid)?.rss.toFixed(0) ?? "?"} MiB`
              : ""
          }`,
        );
      }
    }
  };
  try {
    await warmUp();
    started = Date.now();
    healthz = startHealthzPoller(server.url, 50);
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    if (!died) {
      probes = await runProbes(
        base,
        agent,
        server.target,
        options.requestTimeoutMs,
        check,
        violate,
      );
      sent += probes.sent;
    }
  } catch (error) {
    finished = true;
    await server.stop();
    throw error;
  } finally {
    await healthz?.stop();
    if (rssTimer) clearInterval(rssTimer);
    agent.destroy();
  }
  if (server.pid !== null && !died) {
    const rss = rssMiB(server.pid);
    if (rss) {
      peakRss = Math.max(peakRss, rss.rss, rss.hwm);
      endRss = rss.rss;
    }
  }
  if (server.pid !== null && peakRss > options.rssLimitMiB) {
    violate(-1, null, {
      reason: `server RSS peaked at ${peakRss.toFixed(0)} MiB (limit ${options.rssLimitMiB})`,
    });
  }
  const polls = healthz?.samples ?? [];
  const slow = polls.filter((s) => s.status !== 200 || s.ms > options.healthzLimitMs);
  for (const sample of slow.slice(0, 5)) {
    const end = sample.startedAt + sample.ms;
    const during = spans
      .filter((a) => a.startedAt <= end && a.endedAt >= sample.startedAt)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 3)
      .map((a) => `#${a.index} ${a.kind.slice(0, 80)} (${a.ms.toFixed(0)} ms)`);
    violate(-1, null, {
      reason: `/healthz ${sample.status === 200 ? `took ${sample.ms.toFixed(0)} ms` : `failed: ${sample.error ?? sample.status}`} at +${((sample.startedAt - started) / 1000).toFixed(1)} s`,
      detail: during.length > 0 ? `slowest in flight: ${during.join("; ")}` : undefined,
    });
  }
  const healthSorted = polls.map((s) => s.ms).sort((a, b) => a - b);
  const metrics = server.metricsUrl && !died ? await scrape(server.metricsUrl) : null;
  if (metrics && metrics.bytes > MAX_METRICS_BYTES) {
    violate(-1, null, {
      reason: `/metrics grew to ${metrics.bytes} bytes, ${metrics.series} series (client input in labels?)`,
    });
  }
  if (resets > sent * MAX_RESET_SHARE) {
    violate(-1, null, {
      reason: `${resets} connection resets without an answer (over ${MAX_RESET_SHARE * 100}% of inputs)`,
    });
  }
  const sorted = latencies.sort((a, b) => a - b);
  const errors = server.errorLogs();
  const report: FuzzReport = {
    probes: probes.byKind,
    metrics,
    resets,
    resetSamples,
    slowHealthzSuspects: suspects(spans, slow),
    seed: options.seed,
    inputs: sent,
    seconds: (Date.now() - started) / 1000,
    byStatus,
    shed,
    fourXxWithoutDetail,
    worstMs: sorted.at(-1) ?? 0,
    p99Ms: percentile(sorted, 0.99),
    healthz: {
      polls: polls.length,
      worstMs: healthSorted.at(-1) ?? 0,
      p99Ms: percentile(healthSorted, 0.99),
      over: slow.length,
    },
    peakRssMiB: server.pid !== null ? peakRss : null,
    endRssMiB: endRss,
    serverErrorLogs: errors.count,
    serverErrorSamples: errors.samples,
    violations,
    failureDir: saved > 0 ? failureDir : "",
  };
  finished = true;
  await server.stop();
  return report;
}

type Span = { index: number; kind: string; startedAt: number; endedAt: number; ms: number };

/**
 * The input tags (capture, mutation, encoding) in flight during slow polls
 * far more often than in the run as a whole: what to look at first.
 */
function suspects(spans: Span[], slow: { startedAt: number; ms: number }[]): string[] {
  if (slow.length === 0 || spans.length === 0) return [];
  const overall = new Map<string, number>();
  for (const span of spans)
    for (const tag of new Set(span.kind.split(","))) overall.set(tag, (overall.get(tag) ?? 0) + 1);
  const during = new Map<string, number>();
  let inFlight = 0;
  for (const poll of slow) {
    const end = poll.startedAt + poll.ms;
    for (const span of spans) {
      if (span.startedAt > end || span.endedAt < poll.startedAt) continue;
      inFlight += 1;
      for (const tag of new Set(span.kind.split(","))) during.set(tag, (during.get(tag) ?? 0) + 1);
    }
  }
  return [...during.entries()]
    .map(([tag, n]) => ({ tag, n, lift: n / inFlight / ((overall.get(tag) ?? 1) / spans.length) }))
    .filter((t) => t.n >= 2 && t.lift >= 2)
    .sort((a, b) => b.lift - a.lift)
    .slice(0, 8)
    .map((t) => `${t.tag} x${t.lift.toFixed(1)} (${t.n})`);
}

/** The report as the lines `npm run fuzz` and the test print. */
export function formatReport(report: FuzzReport): string {
  const statuses = Object.entries(report.byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${status}: ${n}`)
    .join(", ");
  const lines = [
    `fuzz seed ${report.seed}: ${report.inputs} inputs in ${report.seconds.toFixed(1)} s`,
    `  answers by status: ${statuses}`,
    `  shed (429/503 with Retry-After): ${report.shed}; 4xx without {"detail"}: ${report.fourXxWithoutDetail}`,
    `  latency: worst ${report.worstMs.toFixed(0)} ms, p99 ${report.p99Ms.toFixed(0)} ms`,
    `  connection resets without an answer: ${report.resets}`,
    ...report.resetSamples.map((line) => `    ${line}`),
    ...(report.slowHealthzSuspects.length > 0
      ? [
          `  in flight during slow /healthz far more than usual: ${report.slowHealthzSuspects.join(", ")}`,
        ]
      : []),
    `  /healthz: ${report.healthz.polls} polls, worst ${report.healthz.worstMs.toFixed(0)} ms, p99 ${report.healthz.p99Ms.toFixed(0)} ms, ${report.healthz.over} over the limit`,
    `  API probes (release files with odd names, cross-project delete): ${
      Object.entries(report.probes)
        .map(([k, n]) => `${k.replace("probe:", "")} x${n}`)
        .join(", ") || "none (no token)"
    }`,
    `  /metrics after the run: ${report.metrics ? `${report.metrics.bytes} bytes, ${report.metrics.series} series` : "not scraped"}`,
    `  peak server RSS: ${report.peakRssMiB === null ? "unknown (no pid)" : `${report.peakRssMiB.toFixed(0)} MiB (${report.endRssMiB?.toFixed(0) ?? "?"} MiB at the end)`}`,
    `  server error logs: ${report.serverErrorLogs}`,
    ...report.serverErrorSamples.map((line) => `    ${line}`),
    `  violations: ${report.violations.length}`,
    ...report.violations
      .slice(0, 20)
      .map(
        (v) =>
          `    #${v.index} [${v.kind.slice(0, 160)}] ${v.reason}${v.detail ? `: ${v.detail}` : ""}${v.file ? ` (${v.file})` : ""}`,
      ),
  ];
  if (report.failureDir) lines.push(`  failing inputs saved in ${report.failureDir}`);
  return lines.join("\n");
}
