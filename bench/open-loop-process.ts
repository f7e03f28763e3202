/**
 * The open-loop load generator for latency at a fixed rate, run as its own
 * process. Requests start at Poisson arrival times (exponential gaps with
 * mean 1/`rate`), each on a free keep-alive socket or a new one, whatever
 * the answers before it did: many independent SDKs, not a few connections
 * waiting their turn. Latency is measured from the request's scheduled
 * start, so a client that falls behind counts against the server
 * (no coordinated omission). Reads a JSON job from argv, prints one JSON
 * result line like load-process.ts.
 *
 * autocannon's `overallRate` is not used for this: it gives each connection
 * a budget of requests per second, refilled by a one-second timer
 * (autocannon lib/httpClient.js `reqsMadeThisSecond`), so every connection
 * sends its second's share back to back and the load arrives in bursts.
 *
 * The client is a minimal HTTP/1.1 one (http-client-lite.ts): every request
 * is built once, before the load, and a response is read only for its status
 * and its end. On this machine the generator shares two cores with Sluice
 * and Postgres, so what it spends is taken from them. Against a server that
 * discards the bodies (discard-server.ts), node:http's client cost 200–213,
 * 123–143 and 96–106 µs of CPU per request at 1,500, 3,000 and 5,000/s;
 * this one 100, 60–63 and 42–46 µs (bench/RESULTS.md, 2026-12-03).
 */

import { KeepAliveClient, serializeRequest } from "./http-client-lite.ts";
import { type LoadJob, requestsOf } from "./payloads.ts";

const job = JSON.parse(process.argv[2] as string) as LoadJob & { rate: number };
const { bodies, headers } = requestsOf(job);
const target = new URL(job.url);
const requests = bodies.map((body) => serializeRequest(target, headers, body));
const client = new KeepAliveClient(target);

const latencies: number[] = [];
let ok = 0;
let non2xx = 0;
let errors = 0;
let sent = 0;
let inFlight = 0;

function send(scheduledAt: number) {
  inFlight++;
  client.send(requests[sent++ % requests.length] as Buffer, (status) => {
    inFlight--;
    latencies.push(performance.now() - scheduledAt);
    if (status === null) errors++;
    else if (status >= 200 && status < 300) ok++;
    else non2xx++;
  });
}

const startedAtMs = Date.now();
const cpuBefore = process.cpuUsage();
const start = performance.now();
const end = start + job.seconds * 1000;
let next = start;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (next <= now && next < end) {
      send(next);
      next += -Math.log(1 - Math.random()) * (1000 / job.rate);
    }
    if (next < end) setTimeout(tick, Math.max(0, Math.min(1, next - performance.now())));
    else resolve();
  };
  tick();
});
while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
const cpu = process.cpuUsage(cpuBefore);
const endedAtMs = Date.now();
client.close();

latencies.sort((a, b) => a - b);
const at = (q: number) =>
  Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
console.log(
  JSON.stringify({
    requests: sent,
    ok,
    non2xx,
    errors,
    timeouts: 0,
    seconds: job.seconds,
    perSecond: ok / job.seconds,
    latency: { p50: at(0.5), p99: at(0.99), max: Math.round(latencies.at(-1) ?? 0) },
    bytesPerRequest: Math.round(bodies.reduce((s, b) => s + b.length, 0) / bodies.length),
    window: { startMs: startedAtMs, endMs: endedAtMs },
    generatorCores: Number(((cpu.user + cpu.system) / 1e3 / (endedAtMs - startedAtMs)).toFixed(2)),
  }),
);
