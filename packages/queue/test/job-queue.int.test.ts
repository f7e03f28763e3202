import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  createBullmqQueue,
  createInProcessQueue,
  eventBatchPayloads,
  eventJobsDepth,
  type JobQueue,
  type JobRun,
  MAX_EVENTS_PER_BATCH_JOB,
  PermanentJobError,
} from "../src/index.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const prefixes: string[] = [];

afterAll(async () => {
  // Only this file's prefixes: other runs share the Redis.
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

const runners: [string, () => JobQueue][] = [
  ["in-process", () => createInProcessQueue(() => {})],
  [
    "bullmq",
    () => {
      const prefix = `sluice-queue-test-${randomBytes(4).toString("hex")}`;
      prefixes.push(prefix);
      return createBullmqQueue({ redisUrl: REDIS_URL, prefix, onError: () => {} });
    },
  ],
];

async function waitUntil(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const eventJob = (n: number) => ({
  projectId: 1,
  eventId: n.toString(16).padStart(32, "0"),
  receivedAt: new Date(0).toISOString(),
});

describe("event batch payloads", () => {
  it("split a commit's events into jobs of at most MAX_EVENTS_PER_BATCH_JOB, in order", () => {
    const events = Array.from({ length: 1_201 }, (_, i) => eventJob(i));
    const payloads = eventBatchPayloads(events);
    expect(payloads.map((p) => p.events.length)).toEqual([500, 500, 201]);
    expect(payloads.flatMap((p) => p.events)).toEqual(events);
    expect(eventBatchPayloads([])).toEqual([]);
    expect(MAX_EVENTS_PER_BATCH_JOB).toBe(500);
  });
});

describe.each(runners)("the %s job queue", (_, create) => {
  it("runs batch jobs apart from single event jobs, and counts both as event jobs", async () => {
    const queue = create();
    const singles: string[] = [];
    const batches: string[][] = [];
    try {
      await queue.enqueue("event.process.batch", eventBatchPayloads([eventJob(1), eventJob(2)]));
      await queue.enqueue("event.process", eventJob(3));
      expect(await eventJobsDepth(queue)).toBe(2);
      expect(await queue.depth("event.process")).toBe(1);
      const single = queue.work("event.process", async (p) => void singles.push(p.eventId), 1);
      await waitUntil(() => singles.length === 1);
      // A consumer of the single-event queue (what releases before 0.5.0 run) never takes a batch.
      expect(await queue.depth("event.process.batch")).toBe(1);
      const batch = queue.work(
        "event.process.batch",
        async (p) => void batches.push(p.events.map((e) => e.eventId)),
        1,
      );
      await waitUntil(() => batches.length === 1);
      expect(batches[0]).toEqual([eventJob(1).eventId, eventJob(2).eventId]);
      await waitUntil(async () => (await eventJobsDepth(queue)) === 0);
      await Promise.all([single.close(), batch.close()]);
    } finally {
      await queue.close();
    }
  });

  it("runs each job type only with its own handler, once per job id", async () => {
    const queue = create();
    const events: string[] = [];
    const deliveries: number[] = [];
    try {
      await queue.enqueue("event.process", [eventJob(1), eventJob(1), eventJob(2)]);
      await queue.enqueue("alert.deliver", { deliveryId: 7 });
      expect(await queue.depth("event.process")).toBe(2);
      expect(await queue.depth("alert.deliver")).toBe(1);
      expect(await queue.depth()).toBe(3);
      const w1 = queue.work("event.process", async (p) => void events.push(p.eventId), 2);
      const w2 = queue.work("alert.deliver", async (p) => void deliveries.push(p.deliveryId), 1);
      await waitUntil(() => events.length === 2 && deliveries.length === 1);
      await waitUntil(async () => (await queue.depth()) === 0);
      expect(events.sort()).toEqual([eventJob(1).eventId, eventJob(2).eventId]);
      expect(deliveries).toEqual([7]);
      await Promise.all([w1.close(), w2.close()]);
    } finally {
      await queue.close();
    }
  });

  it("retries a failing job with exponential backoff and tells the handler its attempt", async () => {
    const queue = create();
    const runs: (JobRun & { at: number })[] = [];
    try {
      const worker = queue.work(
        "alert.deliver",
        async (_payload, run) => {
          runs.push({ ...run, at: Date.now() });
          if (run.attempt < 3) throw new Error("receiver down");
        },
        1,
      );
      await queue.enqueue("alert.deliver", { deliveryId: 1 });
      await waitUntil(() => runs.length === 3);
      expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
      expect(runs.every((r) => !r.final)).toBe(true);
      const [a, b, c] = runs.map((r) => r.at) as [number, number, number];
      // alert.deliver backs off from 1 s: about 1 s, then about 2 s.
      expect(b - a).toBeGreaterThanOrEqual(900);
      expect(c - b).toBeGreaterThanOrEqual(1800);
      await worker.close();
    } finally {
      await queue.close();
    }
  });

  it("stops retrying a job that throws PermanentJobError, and rejects bad payloads", async () => {
    const queue = create();
    let runs = 0;
    try {
      const worker = queue.work(
        "alert.deliver",
        async () => {
          runs++;
          throw new PermanentJobError("no such delivery");
        },
        1,
      );
      await queue.enqueue("alert.deliver", { deliveryId: 2 });
      await waitUntil(async () => runs === 1 && (await queue.depth("alert.deliver")) === 0);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(runs).toBe(1);
      await expect(
        // A payload the schema refuses never reaches the handler.
        (async () => {
          await queue.enqueue("alert.deliver", { deliveryId: -1 } as never);
          await waitUntil(async () => (await queue.depth("alert.deliver")) === 0);
        })(),
      ).resolves.toBeUndefined();
      expect(runs).toBe(1);
      await worker.close();
    } finally {
      await queue.close();
    }
  });
});
