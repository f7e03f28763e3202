/**
 * The load generator, run as its own process so it never shares a CPU
 * budget with what it measures. Reads a JSON job from argv, prints one JSON
 * result line. Closed loop: `connections` each send the next request when
 * the previous one is answered, which finds the peak. (Fixed rates use
 * open-loop-process.ts.)
 */
import autocannon from "autocannon";
import { buildEvent, encodeBody, newEventId, type PayloadKind } from "./payloads.ts";

type Job = {
  url: string;
  kind: PayloadKind;
  form: "envelope" | "store";
  gzip: boolean;
  seconds: number;
  connections: number;
  bodies: number;
};

const job = JSON.parse(process.argv[2] as string) as Job;
const bodies = Array.from({ length: job.bodies }, (_, i) =>
  encodeBody(buildEvent(job.kind, newEventId(), i), job.form, job.gzip),
);
let next = 0;
const headers: Record<string, string> = {
  "content-type": job.form === "store" ? "application/json" : "application/x-sentry-envelope",
};
if (job.gzip) headers["content-encoding"] = "gzip";

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
  }),
);
