import { createBullmqQueue } from "@sluice/queue";
import { UnrecoverableError } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepUnprocessed } from "../src/worker/background-loops.ts";
import {
  countRows,
  createTestDatabase,
  deleteQueueKeys,
  REDIS_URL,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";

describe("the sweeper", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ingest: TestSluice;
  const prefix = `sluice-sweep-${Date.now()}`;
  beforeAll(async () => {
    database = await createTestDatabase();
    ingest = await startTestSluice({
      roles: "ingest,api",
      databaseUrl: database.url,
      queuePrefix: prefix,
    });
  });
  /**
   * Ingest enqueues its stored events up to 20 ms after their 200s
   * (EventHandOff): wait until the batch queue stops growing, so that
   * deleting the queue's keys loses every job, not all but the last.
   */
  async function handOffSettled() {
    let last = -1;
    for (;;) {
      const depth = await ingest.services.queue.depth("event.process.batch");
      if (depth === last) return;
      last = depth;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  afterAll(async () => {
    await ingest?.stop();
    await deleteQueueKeys(prefix);
    await database?.drop();
  });

  it("retries an event's job that failed for good, which would block a new one", async () => {
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    const id = crypto.randomUUID().replaceAll("-", "");
    const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"failed for good"}\n`;
    expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    const queue = createBullmqQueue({ redisUrl: REDIS_URL, prefix, onError: () => {} });
    try {
      await waitFor(async () => (await queue.depth()) === 1, 5_000, "the job queued");
      // Ingest hands its commits over as batch jobs, in their own queue.
      expect(await queue.depth("event.process.batch")).toBe(1);
      const failing = queue.work(
        "event.process.batch",
        async () => {
          throw new UnrecoverableError("gone for good");
        },
        1,
      );
      await waitFor(async () => (await queue.depth()) === 0, 5_000, "the job failed");
      await failing.close();
      expect(await countRows(ingest.sql, "events", "processed_at IS NULL")).toBe(1);
      expect(
        await sweepUnprocessed(ingest.services, { minAgeMs: 0, batch: 10, stopping: () => false }),
      ).toBe(1);
      expect(await queue.depth("event.process")).toBe(1);
    } finally {
      await queue.close();
    }
    await deleteQueueKeys(prefix);
    await ingest.sql.query("DELETE FROM event_ids");
    await ingest.sql.query("DELETE FROM events");
  });

  it("walks a backlog larger than one batch once, and stops between batches when asked", async () => {
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    for (let i = 0; i < 23; i++) {
      const id = crypto.randomUUID().replaceAll("-", "");
      const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"backlog ${i}"}\n`;
      expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    }
    await handOffSettled();
    await deleteQueueKeys(prefix);
    const sweep = (stopping: () => boolean) =>
      sweepUnprocessed(ingest.services, { minAgeMs: 0, batch: 5, stopping });
    expect(await sweep(() => false)).toBe(23);
    expect(await ingest.services.queue.depth()).toBe(23);
    let batches = 0;
    expect(await sweep(() => batches++ >= 2)).toBe(10);
    // Leave the backlog to the next test's sweeper.
    await deleteQueueKeys(prefix);
    await ingest.sql.query("DELETE FROM event_ids");
    await ingest.sql.query("DELETE FROM events");
  });

  it("groups every event after Redis lost all their jobs", async () => {
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    for (let i = 0; i < 30; i++) {
      const id = crypto.randomUUID().replaceAll("-", "");
      const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"swept ${i}","level":"error"}\n`;
      expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    }
    await handOffSettled();
    expect(await deleteQueueKeys(prefix)).toBeGreaterThan(0);
    expect(await countRows(ingest.sql, "events", "processed_at IS NULL")).toBe(30);

    const worker = await startTestSluice({
      roles: "worker",
      databaseUrl: database.url,
      queuePrefix: prefix,
      env: { SLUICE_SWEEP_INTERVAL_MS: "200", SLUICE_SWEEP_MIN_AGE_MS: "0" },
    });
    try {
      await waitFor(
        async () => (await countRows(ingest.sql, "events", "processed_at IS NULL")) === 0,
        20_000,
        "sweep",
      );
      const issues = await ingest.sql.query("SELECT times_seen FROM issues");
      expect(issues.rows).toEqual([{ times_seen: "30" }]);
      expect(await countRows(ingest.sql, "events", "issue_id IS NULL")).toBe(0);
    } finally {
      await worker.stop();
    }
  });
});
