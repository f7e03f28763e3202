/**
 * `npm run fuzz -- [--count N] [--seed S] [--from I] [--url URL --dsn DSN [--token T] [--pid P]]`:
 * the black-box fuzzer of apps/server/test/fuzz. Without --url it starts
 * `sluice serve` on a fresh test database (Postgres at TEST_POSTGRES_URL).
 * Prints the figures; exits 1 on any violation.
 */
import { parseArgs } from "node:util";
import { defaultFuzzOptions, formatReport, runFuzz } from "../apps/server/test/fuzz/fuzz-run.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string" },
    seed: { type: "string" },
    from: { type: "string" },
    url: { type: "string" },
    dsn: { type: "string" },
    token: { type: "string" },
    pid: { type: "string" },
    concurrency: { type: "string" },
    "time-limit": { type: "string" },
    "healthz-ms": { type: "string" },
    "rss-mib": { type: "string" },
  },
});

const number = (value: string | undefined, fallback: number) => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${value}`);
  return n;
};

// Ctrl-C ends the run through `exit`, which stops the server the fuzzer started.
process.once("SIGINT", () => process.exit(130));

const report = await runFuzz({
  count: number(values.count, defaultFuzzOptions.count),
  seed: number(values.seed, Math.floor(Math.random() * 2 ** 31)),
  from: number(values.from, 0),
  url: values.url,
  dsn: values.dsn,
  token: values.token,
  pid: values.pid === undefined ? undefined : number(values.pid, 0),
  concurrency: Math.max(1, number(values.concurrency, defaultFuzzOptions.concurrency)),
  timeLimitMs: number(values["time-limit"], defaultFuzzOptions.timeLimitMs / 1000) * 1000,
  healthzLimitMs: number(values["healthz-ms"], defaultFuzzOptions.healthzLimitMs),
  rssLimitMiB: number(values["rss-mib"], defaultFuzzOptions.rssLimitMiB),
  progress: (line) => console.error(line),
});
console.log(formatReport(report));
process.exitCode = report.violations.length > 0 ? 1 : 0;
