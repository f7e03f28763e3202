import { describe, expect, it } from "vitest";
import { formatReport, runFuzz } from "./fuzz/fuzz-run.ts";

// Issue #11: untrusted input cannot hurt the fleet. `npm run fuzz -- --count N` runs more.
const COUNT = 20_000;

/**
 * `/healthz` must answer within 100 ms: every poll with `npm run fuzz`, and
 * here 99 of 100, with none over 500 ms. On this 2-core machine the fuzzer,
 * the server and Postgres share the cores, and scheduling alone costs a
 * poll in a hundred 100-350 ms; the stalls this exists to catch froze the
 * process for 0.9 to 38 s.
 */
const HEALTHZ_P99_MS = 100;
const HEALTHZ_LIMIT_MS = Number(process.env.TEST_FUZZ_HEALTHZ_MS ?? 500);

describe("black-box fuzzing of a spawned sluice serve", () => {
  it(`answers ${COUNT} mutated SDK captures and API requests with 2xx/4xx, /healthz fast, RSS bounded, never dying`, async () => {
    const report = await runFuzz({
      count: COUNT,
      seed: 20_261_201,
      timeLimitMs: 240_000,
      healthzLimitMs: HEALTHZ_LIMIT_MS,
    });
    console.log(formatReport(report));
    expect(report.violations.map((v) => `#${v.index} ${v.reason} ${v.detail ?? ""}`)).toEqual([]);
    expect(report.inputs).toBeGreaterThanOrEqual(COUNT);
    expect(report.healthz.p99Ms).toBeLessThanOrEqual(HEALTHZ_P99_MS);
  }, 300_000);
});
