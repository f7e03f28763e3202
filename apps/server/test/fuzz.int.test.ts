import { describe, expect, it } from "vitest";
import { formatReport, runFuzz } from "./fuzz/fuzz-run.ts";

// Issue #11: untrusted input cannot hurt the fleet. `npm run fuzz -- --count N` runs more.
const COUNT = 20_000;

describe("black-box fuzzing of a spawned sluice serve", () => {
  it(`answers ${COUNT} mutated SDK captures and API requests with 2xx/4xx, /healthz fast, RSS bounded, never dying`, async () => {
    const report = await runFuzz({ count: COUNT, seed: 20_261_201, timeLimitMs: 240_000 });
    console.log(formatReport(report));
    expect(report.violations.map((v) => `#${v.index} ${v.reason} ${v.detail ?? ""}`)).toEqual([]);
    expect(report.inputs).toBe(COUNT);
  }, 300_000);
});
