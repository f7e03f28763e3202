import { insertIngestBatch } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventSymbolicator } from "../src/worker/event-symbolicator.ts";
import { processEvent } from "../src/worker/process-event.ts";
import { createReleaseSeenRecorder } from "../src/worker/release-seen.ts";
import { startTestSluice, type TestSluice } from "./harness.ts";

describe("the event.process job", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ roles: "ingest,api" });
  });
  afterAll(async () => t?.stop());
  const deps = () => ({
    db: t.services.db,
    log: t.services.log,
    symbolicate: createEventSymbolicator(t.services.db, t.services.blobs, 1024 * 1024),
    recordRelease: createReleaseSeenRecorder(t.services.db),
  });

  async function store(count: number, payload: object) {
    const receivedAt = new Date();
    const events = Array.from({ length: count }, () => ({
      projectId: t.projectId,
      eventId: crypto.randomUUID().replaceAll("-", ""),
      receivedAt,
      timestamp: receivedAt,
      keyId: 1,
      payloadText: JSON.stringify(payload),
    }));
    await insertIngestBatch(t.services.db.pool, { events, attachments: [], outcomes: [] });
    return events.map((e) => ({
      projectId: e.projectId,
      eventId: e.eventId,
      receivedAt: receivedAt.toISOString(),
    }));
  }

  it("changes nothing when it runs again for the same event", async () => {
    const [job] = await store(1, { message: "rerun me", user: { id: "u1" } });
    if (!job) throw new Error("no job");
    expect(await processEvent(deps(), job)).toBe("grouped");
    expect(await processEvent(deps(), job)).toBe("already-processed");
    const issue = await t.sql.query(
      "SELECT times_seen, user_count FROM issues WHERE title = 'rerun me'",
    );
    expect(issue.rows).toEqual([{ times_seen: "1", user_count: "1" }]);
  });

  it("makes one issue when the first events of a new issue are processed at once", async () => {
    const jobs = await store(20, {
      exception: { values: [{ type: "RaceError", value: "first seen twenty times" }] },
    });
    const results = await Promise.all(jobs.map((job) => processEvent(deps(), job)));
    expect(results).toEqual(Array(20).fill("grouped"));
    const issues = await t.sql.query(
      "SELECT times_seen FROM issues WHERE title = 'RaceError: first seen twenty times'",
    );
    expect(issues.rows).toEqual([{ times_seen: "20" }]);
  });
});
