import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addIssueUsers, countIssueEvents, createIssue } from "../src/queries/issue-grouping.ts";
import {
  createTestDatabase,
  migrateTestDatabase,
  openTestPool,
  type TestDatabase,
} from "./test-database.ts";

describe("issue grouping writes from concurrent batches", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let issueId: number;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrateTestDatabase(db.url);
    pool = openTestPool(db.url, 4);
    await pool.query("INSERT INTO organizations (id, slug, name) VALUES (1, 'o', 'o')");
    await pool.query(
      "INSERT INTO projects (id, organization_id, slug, name) VALUES (1, 1, 'p', 'p')",
    );
    const client = await pool.connect();
    try {
      issueId = await createIssue(client, {
        projectId: 1,
        type: "error",
        title: "Error: hot",
        culprit: "",
        level: "error",
        platform: "node",
        logger: null,
        metadata: {},
        seenAt: new Date("2026-11-24T00:00:00Z"),
        release: null,
      });
    } finally {
      client.release();
    }
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  // Both batches add a user to one issue (the foreign key takes FOR KEY SHARE
  // on the issue row) and then count it. A FOR UPDATE lock there made each
  // wait for the other's key share: PostgreSQL aborted one with 40P01.
  it("two batches that both add users to one issue then count it both commit", async () => {
    const [a, b] = [await pool.connect(), await pool.connect()];
    const count = (n: number) => ({
      issueId,
      events: n,
      firstSeen: new Date("2026-11-24T00:00:00Z"),
      lastSeen: new Date("2026-11-24T00:01:00Z"),
      newUsers: 1,
      lastRelease: null,
    });
    try {
      await a.query("BEGIN");
      await b.query("BEGIN");
      await addIssueUsers(a, [{ issueId, userKey: "id:a" }]);
      await addIssueUsers(b, [{ issueId, userKey: "id:b" }]);
      // Both count at once: one takes the issue's lock, the other queues
      // behind it until it commits.
      await Promise.all([
        countIssueEvents(a, [count(2)]).then(() => a.query("COMMIT")),
        countIssueEvents(b, [count(3)]).then(() => b.query("COMMIT")),
      ]);
    } finally {
      await a.query("ROLLBACK").catch(() => {});
      await b.query("ROLLBACK").catch(() => {});
      a.release();
      b.release();
    }
    const issue = await pool.query(
      "SELECT times_seen::int, user_count::int FROM issues WHERE id = $1",
      [issueId],
    );
    expect(issue.rows[0]).toEqual({ times_seen: 5, user_count: 2 });
  });
});
