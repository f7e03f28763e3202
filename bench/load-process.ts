/**
 * The load generator, run as its own process so it never shares a CPU
 * budget with what it measures. Reads a JSON job from argv, prints one JSON
 * result line. Closed loop: `connections` each send the next request when
 * the previous one is answered, which finds the peak. (Fixed rates use
 * open-loop-process.ts.)
 */
import autocannon from "autocannon";
import { type LoadJob, requestsOf } from "./payloads.ts";

const job = JSON.parse(process.argv[2] as string) as LoadJob & { connections: number };
const { bodies, headers } = requestsOf(job);
let next = 0;

const startedAtMs = Date.now();
const cpuBefore = process.cpuUsage();
const result = await autocannon({
  url: job.url,
  method: "POST",
  connections: job.connections,
  duration: job.seconds,
  headers,
  requests: [
    {
      setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
    },
  ],
});
const cpu = process.cpuUsage(cpuBefore);
const endedAtMs = Date.now();
const ok = result["2xx"];
console.log(
  JSON.stringify({
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: job.seconds,
    perSecond: ok / job.seconds,
    latency: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    bytesPerRequest: Math.round(bodies.reduce((s, b) => s + b.length, 0) / bodies.length),
    window: { startMs: startedAtMs, endMs: endedAtMs },
    generatorCores: Number(((cpu.user + cpu.system) / 1e3 / (endedAtMs - startedAtMs)).toFixed(2)),
  }),
);
