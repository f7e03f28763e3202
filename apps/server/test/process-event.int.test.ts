import { insertIngestBatch } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventSymbolicator } from "../src/worker/event-symbolicator.ts";
import { processEvent, processEvents } from "../src/worker/process-event.ts";
import { createReleaseSeenRecorder } from "../src/worker/release-seen.ts";
import { countRows, startTestSluice, type TestSluice } from "./harness.ts";

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

  it("groups a batch in one transaction: counts per issue, users, releases, and the odd ones out", async () => {
    const [done] = await store(1, { message: "batch: done before" });
    if (!done) throw new Error("no job");
    await processEvent(deps(), done);
    const hot = await store(6, { message: "batch: hot issue", release: "b@1", user: { id: "u1" } });
    const later = await store(2, {
      message: "batch: hot issue",
      release: "b@2",
      user: { id: "u2" },
    });
    const fresh = await store(3, { message: "batch: another issue", user: { id: "u1" } });
    const [transaction] = await store(1, { type: "transaction", transaction: "GET /" });
    const missing = { ...done, eventId: "f".repeat(32) };
    const jobs = [...hot, done, ...fresh, missing, transaction, ...later, hot[0]].filter(
      (j): j is NonNullable<typeof j> => j !== undefined,
    );
    const outcomes = await processEvents(deps(), jobs);
    expect(outcomes.map((o) => (o.ok ? o.result : "error"))).toEqual([
      ...Array(6).fill("grouped"),
      "already-processed",
      ...Array(3).fill("grouped"),
      "missing",
      "no-issue",
      "grouped",
      "grouped",
      "grouped",
    ]);
    const issues = await t.sql.query(
      `SELECT title, times_seen, user_count, first_release, last_release FROM issues
        WHERE title LIKE 'batch: %' ORDER BY title`,
    );
    expect(issues.rows).toEqual([
      {
        title: "batch: another issue",
        times_seen: "3",
        user_count: "1",
        first_release: null,
        last_release: null,
      },
      {
        title: "batch: done before",
        times_seen: "1",
        user_count: "0",
        first_release: null,
        last_release: null,
      },
      {
        title: "batch: hot issue",
        times_seen: "8",
        user_count: "2",
        first_release: "b@1",
        last_release: "b@2",
      },
    ]);
    expect(await countRows(t.sql, "events", "processed_at IS NULL")).toBe(0);
    // Processing the same batch again changes nothing.
    const again = await processEvents(deps(), jobs);
    expect(again.filter((o) => o.ok && o.result === "grouped")).toHaveLength(0);
  });
});
