import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { insertIngestBatch } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepUnprocessed } from "../src/worker/background-loops.ts";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

const run = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const sluiceBin = join(root, "apps/server/bin/sluice.js");

describe("a poison event", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ env: { SLUICE_SWEEP_INTERVAL_MS: "200" } });
  });
  afterAll(async () => t?.stop());

  it("is marked failed after one attempt, skipped by the sweeper, listed, counted and readable; its batch-mate is processed", async () => {
    const receivedAt = new Date(Date.now() - 60_000);
    const poisonId = crypto.randomUUID().replaceAll("-", "");
    const goodId = crypto.randomUUID().replaceAll("-", "");
    await insertIngestBatch(t.services.db.pool, {
      events: [
        {
          projectId: t.projectId,
          eventId: goodId,
          receivedAt,
          timestamp: receivedAt,
          keyId: 1,
          payloadText: JSON.stringify({ message: "the poison's neighbour" }),
        },
      ],
      attachments: [],
      outcomes: [],
    });
    // A compressed payload whose deflate data is damaged: decoding throws, every time.
    await t.sql.query(
      `INSERT INTO events (project_id, event_id, received_at, "timestamp", payload, payload_compressed)
       VALUES ($1, $2, $3, $3, 'null'::jsonb, $4)`,
      [t.projectId, poisonId, receivedAt, Buffer.from([1, 0xff, 0xfe, 0xfd, 0x00, 0x13])],
    );
    await t.sql.query(
      "INSERT INTO event_ids (project_id, event_id, received_at) VALUES ($1, $2, $3)",
      [t.projectId, poisonId, receivedAt],
    );
    const job = (eventId: string) => ({
      projectId: t.projectId,
      eventId,
      receivedAt: receivedAt.toISOString(),
    });
    await t.services.queue.enqueue("event.process", [job(poisonId), job(goodId)]);

    await waitFor(
      async () => (await countRows(t.sql, "event_failures", "failed_at IS NOT NULL")) === 1,
      15_000,
      "the poison event marked failed",
    );
    await waitFor(
      async () => (await countRows(t.sql, "events", "processed_at IS NOT NULL")) === 1,
      15_000,
      "its batch-mate processed",
    );
    const failure = await t.sql.query(
      "SELECT event_id::text, failures::int, last_error FROM event_failures",
    );
    expect(failure.rows).toEqual([
      {
        event_id: expect.stringMatching(new RegExp(poisonId.slice(0, 8))),
        failures: 1,
        last_error: expect.stringMatching(/^UndecodablePayload: /),
      },
    ]);
    expect(await t.services.queue.depth()).toBe(0);

    // The sweeper never enqueues it again (nor does the one running in the process).
    expect(
      await sweepUnprocessed(t.services, { minAgeMs: 0, batch: 10, stopping: () => false }),
    ).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    expect(await t.services.queue.depth()).toBe(0);
    expect((await t.sql.query("SELECT failures::int FROM event_failures")).rows).toEqual([
      { failures: 1 },
    ]);

    const metrics = await (await fetch(`${t.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/^sluice_events_failed_total 1$/m);
    expect(metrics).toMatch(/sluice_jobs_total\{job="event.process",result="failed"\} 1/);

    const { stdout } = await run(process.execPath, [sluiceBin, "events", "failed", "--json"], {
      env: { ...process.env, DATABASE_URL: t.config.databaseUrl ?? "", LOG_LEVEL: "warn" },
    });
    expect(JSON.parse(stdout)).toEqual([
      {
        organization: "sluice",
        project: "default",
        projectId: String(t.projectId),
        eventId: poisonId,
        receivedAt: receivedAt.toISOString(),
        failures: 1,
        lastError: expect.stringMatching(/^UndecodablePayload: /),
        failedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    ]);
    const table = await run(process.execPath, [sluiceBin, "events", "failed"], {
      env: { ...process.env, DATABASE_URL: t.config.databaseUrl ?? "", LOG_LEVEL: "warn" },
    });
    const [header, row] = table.stdout.trim().split("\n");
    expect(header).toMatch(/^PROJECT\s+EVENT ID\s+FAILURES\s+FAILED AT\s+LAST ERROR$/);
    expect(row).toMatch(
      new RegExp(`^sluice/default\\s+${poisonId}\\s+1\\s+\\S+Z\\s+UndecodablePayload: `),
    );

    const read = await api(t, `/api/0/projects/sluice/default/events/${poisonId}/`);
    expect(read.status).toBe(200);
  });
});
