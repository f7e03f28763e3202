import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compressPayload,
  decompressPayload,
  type PayloadStorage,
  storageOfCompressed,
} from "../src/event-payload.ts";
import { insertIngestBatch } from "../src/queries/ingest-batch.ts";
import {
  addIssueUsers,
  countIssueEvents,
  createIssue,
  markEventsProcessed,
  readEvents,
} from "../src/queries/issue-grouping.ts";
import { countIssueTagValues } from "../src/queries/issue-tags.ts";
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

  // A symbolicated payload replaces the stored one in the row's own format.
  it("reads jsonb, deflate and zstd rows alike and rewrites each in its own format", async () => {
    const receivedAt = new Date();
    const row = (eventId: string, storage: PayloadStorage) => {
      const text = JSON.stringify({ message: `event ${eventId}` });
      return {
        projectId: 1,
        eventId,
        receivedAt,
        timestamp: receivedAt,
        keyId: 1,
        ...(storage === "jsonb"
          ? { payloadText: text }
          : { payloadCompressed: compressPayload(text, storage) }),
      };
    };
    const ids = { jsonb: "a".repeat(32), compressed: "b".repeat(32), zstd: "c".repeat(32) };
    const storages = Object.keys(ids) as PayloadStorage[];
    await insertIngestBatch(pool, {
      events: storages.map((storage) => row(ids[storage], storage)),
      attachments: [],
      outcomes: [],
    });
    const read = await readEvents(
      pool,
      storages.map((storage) => ({ projectId: 1, eventId: ids[storage], receivedAt })),
    );
    const byId = new Map(read.map((e) => [e.eventId, e]));
    for (const storage of storages) {
      expect(byId.get(ids[storage])).toMatchObject({
        storedAs: storage,
        payload: { message: `event ${ids[storage]}` },
      });
    }

    const client = await pool.connect();
    try {
      await markEventsProcessed(
        client,
        read.map((e) => ({ ...e, issueId, payload: { message: "symbolicated", was: e.eventId } })),
      );
    } finally {
      client.release();
    }
    const stored = await pool.query(
      `SELECT event_id::text AS id, payload, payload_compressed FROM events
        WHERE event_id = ANY($1::uuid[]) ORDER BY event_id`,
      [storages.map((storage) => ids[storage])],
    );
    const [a, b, c] = stored.rows;
    expect(a.payload).toEqual({ message: "symbolicated", was: ids.jsonb });
    expect(a.payload_compressed).toBeNull();
    for (const [packed, storage] of [
      [b, "compressed"],
      [c, "zstd"],
    ] as const) {
      expect(packed.payload).toBeNull();
      expect(storageOfCompressed(packed.payload_compressed)).toBe(storage);
      expect(decompressPayload(packed.payload_compressed)).toEqual({
        message: "symbolicated",
        was: ids[storage],
      });
    }
  });

  it("counts tag values with each row's own first and last seen, then widens them", async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 10, 24, 0, minute));
    const row = (value: string, first: number, last: number) => ({
      issueId,
      projectId: 1,
      key: "tier",
      value,
      events: 1,
      firstSeen: at(first),
      lastSeen: at(last),
    });
    const client = await pool.connect();
    try {
      // Rows share some times and not others, as a batch's tags do.
      await countIssueTagValues(client, [row("a", 1, 1), row("b", 1, 2), row("c", 3, 4)]);
      await countIssueTagValues(client, [row("a", 0, 5), row("c", 3, 3)]);
    } finally {
      client.release();
    }
    const { rows } = await pool.query(
      `SELECT value, times_seen::int AS n, first_seen, last_seen FROM issue_tag_values
        WHERE issue_id = $1 AND key = 'tier' ORDER BY value`,
      [issueId],
    );
    expect(rows).toEqual([
      { value: "a", n: 2, first_seen: at(0), last_seen: at(5) },
      { value: "b", n: 1, first_seen: at(1), last_seen: at(2) },
      { value: "c", n: 2, first_seen: at(3), last_seen: at(4) },
    ]);
  });
});
