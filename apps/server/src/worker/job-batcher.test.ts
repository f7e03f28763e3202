import { describe, expect, it } from "vitest";
import { JobBatcher } from "./job-batcher.ts";

describe("JobBatcher", () => {
  it("runs jobs that arrive together as one batch, up to maxBatch", async () => {
    const batches: number[][] = [];
    const batcher = new JobBatcher(
      async (jobs: number[]) => {
        batches.push(jobs);
        return jobs.map((j) => ({ ok: true as const, result: j * 10 }));
      },
      { windowMs: 5, maxBatch: 3 },
    );
    const results = await Promise.all([1, 2, 3, 4, 5].map((j) => batcher.add(j)));
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it("fails one job alone, and reruns every job alone when the whole batch throws", async () => {
    const batches: number[][] = [];
    const batcher = new JobBatcher(
      async (jobs: number[]) => {
        batches.push(jobs);
        if (jobs.length > 1) throw new Error("batch failed");
        if (jobs[0] === 2) throw new Error("two is bad");
        if (jobs[0] === 3) return [{ ok: false as const, error: new Error("three alone") }];
        return jobs.map((j) => ({ ok: true as const, result: j }));
      },
      { windowMs: 5, maxBatch: 10 },
    );
    const settled = await Promise.allSettled([1, 2, 3].map((j) => batcher.add(j)));
    expect(
      settled.map((s) => (s.status === "fulfilled" ? s.value : (s.reason as Error).message)),
    ).toEqual([1, "two is bad", "three alone"]);
    expect(batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });
});
