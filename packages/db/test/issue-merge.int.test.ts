import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  claimIssueHashes,
  countIssueEvents,
  createIssue,
  lockIssues,
} from "../src/queries/issue-grouping.ts";
import { mergeIssues, unmergeHashes } from "../src/queries/issue-merge.ts";
import {
  createTestDatabase,
  migrateTestDatabase,
  openTestPool,
  type TestDatabase,
} from "./test-database.ts";

const at = new Date("2026-12-01T00:00:00Z");
const issue = (title: string) => ({
  projectId: 1,
  type: "error",
  title,
  culprit: "",
  level: "error",
  platform: "node",
  logger: null,
  metadata: {},
  seenAt: at,
  release: null,
});
const count = (issueId: number, events: number) => ({
  issueId,
  events,
  firstSeen: at,
  lastSeen: at,
  newUsers: 0,
  lastRelease: null,
});
/** Resolves to "pending" when `promise` has not settled within `ms`. */
const settledWithin = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([
    promise.then(() => "settled"),
    new Promise((r) => setTimeout(() => r("pending"), ms)),
  ]);

describe("merge racing the worker's hash claims", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrateTestDatabase(db.url);
    pool = openTestPool(db.url, 6);
    await pool.query("INSERT INTO organizations (id, slug, name) VALUES (1, 'o', 'o')");
    await pool.query(
      "INSERT INTO projects (id, organization_id, slug, name) VALUES (1, 1, 'p', 'p')",
    );
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** A parent (5 events, hash `{name}-p`) and a child (1 event, `{name}-c`), committed. */
  async function twoIssues(name: string): Promise<{ parent: number; child: number }> {
    const client = await pool.connect();
    try {
      const parent = await createIssue(client, issue(`${name} parent`));
      const child = await createIssue(client, issue(`${name} child`));
      await claimIssueHashes(client, [
        { projectId: 1, hash: `${name}-p`, issueId: parent, variant: "app" },
        { projectId: 1, hash: `${name}-c`, issueId: child, variant: "app" },
      ]);
      await countIssueEvents(client, [count(parent, 5), count(child, 1)]);
      return { parent, child };
    } finally {
      client.release();
    }
  }

  async function begin(): Promise<pg.PoolClient> {
    const client = await pool.connect();
    await client.query("BEGIN");
    return client;
  }

  async function end(...clients: pg.PoolClient[]) {
    for (const c of clients) {
      await c.query("ROLLBACK").catch(() => {});
      c.release();
    }
  }

  it("a merge waits for a batch that claimed a hash for the child, and takes the hash along", async () => {
    const { parent, child } = await twoIssues("wait");
    const worker = await begin();
    const merger = await begin();
    try {
      expect(await lockIssues(worker, [child])).toEqual(new Set());
      await claimIssueHashes(worker, [
        { projectId: 1, hash: "wait-c2", issueId: child, variant: "system" },
      ]);
      await countIssueEvents(worker, [count(child, 1)]);
      const merging = mergeIssues(merger, 1, [parent, child]);
      expect(await settledWithin(merging, 300)).toBe("pending");
      await worker.query("COMMIT");
      expect(await merging).toEqual({ parentId: parent, childIds: [child] });
      await merger.query("COMMIT");
    } finally {
      await end(worker, merger);
    }
    const hashes = await pool.query(
      "SELECT hash, issue_id::int FROM issue_hashes WHERE hash LIKE 'wait-%' ORDER BY hash",
    );
    expect(hashes.rows).toEqual([
      { hash: "wait-c", issue_id: parent },
      { hash: "wait-c2", issue_id: parent },
      { hash: "wait-p", issue_id: parent },
    ]);
    const rows = await pool.query(
      "SELECT id::int, times_seen::int, merged_into_id::int FROM issues WHERE id = ANY($1) ORDER BY id",
      [[parent, child]],
    );
    expect(rows.rows).toEqual([
      { id: parent, times_seen: 7, merged_into_id: null },
      { id: child, times_seen: 2, merged_into_id: parent },
    ]);
  });

  it("a batch that locks the child while a merge runs sees it merged once the merge commits", async () => {
    const { parent, child } = await twoIssues("after");
    const merger = await begin();
    const worker = await begin();
    try {
      expect(await mergeIssues(merger, 1, [child, parent])).toEqual({
        parentId: parent,
        childIds: [child],
      });
      const locking = lockIssues(worker, [child]);
      expect(await settledWithin(locking, 300)).toBe("pending");
      await merger.query("COMMIT");
      // The worker runs its batch again and finds the hash at the parent.
      expect(await locking).toEqual(new Set([child]));
    } finally {
      await end(merger, worker);
    }
  });

  // Without the fixed order, a batch that refers to the child (a hash claim
  // takes FOR KEY SHARE on it) before locking the parent deadlocks with a
  // merge that holds the parent and waits for the child.
  it("deadlocks when a batch claims a hash before locking its issues (why the order exists)", async () => {
    const { parent, child } = await twoIssues("cycle");
    const worker = await begin();
    const merger = await begin();
    try {
      await claimIssueHashes(worker, [
        { projectId: 1, hash: "cycle-c2", issueId: child, variant: "system" },
      ]);
      const merging = mergeIssues(merger, 1, [parent, child]).catch((e) => e);
      await settledWithin(merging, 200);
      const counting = countIssueEvents(worker, [count(parent, 1), count(child, 1)]).catch(
        (e) => e,
      );
      const codes = (await Promise.all([merging, counting])).map(
        (r) => (r as { code?: string } | null)?.code,
      );
      expect(codes).toContain("40P01");
    } finally {
      await end(worker, merger);
    }
  });

  it("never deadlocks when the batch locks its issues first, whoever starts first", async () => {
    for (let round = 0; round < 6; round++) {
      const { parent, child } = await twoIssues(`order${round}`);
      const worker = await begin();
      const merger = await begin();
      try {
        const batch = async () => {
          if (round % 2) await new Promise((r) => setTimeout(r, 20));
          const merged = await lockIssues(worker, [child, parent]);
          if (merged.size > 0) return "retry";
          await claimIssueHashes(worker, [
            { projectId: 1, hash: `order${round}-c2`, issueId: child, variant: "system" },
          ]);
          await countIssueEvents(worker, [count(parent, 1), count(child, 1)]);
          await worker.query("COMMIT");
          return "committed";
        };
        const merge = async () => {
          if (round % 2 === 0) await new Promise((r) => setTimeout(r, 20));
          const result = await mergeIssues(merger, 1, [parent, child]);
          await merger.query("COMMIT");
          return result;
        };
        const [batchResult, mergeResult] = await Promise.all([batch(), merge()]);
        expect(mergeResult).toEqual({ parentId: parent, childIds: [child] });
        const owners = await pool.query(
          "SELECT DISTINCT issue_id::int FROM issue_hashes WHERE hash LIKE $1",
          [`order${round}-%`],
        );
        // Whichever went first, no hash is left with the merged child.
        expect(owners.rows).toEqual([{ issue_id: parent }]);
        expect(["committed", "retry"]).toContain(batchResult);
      } finally {
        await end(worker, merger);
      }
    }
  });

  it("unmerges a hash with its events into a new issue, and a merge takes only the project's issues", async () => {
    const { parent, child } = await twoIssues("split");
    const client = await pool.connect();
    try {
      await pool.query(
        "INSERT INTO organizations (id, slug, name) VALUES (2, 'o2', 'o2') ON CONFLICT DO NOTHING",
      );
      await pool.query(
        "INSERT INTO projects (id, organization_id, slug, name) VALUES (2, 2, 'p2', 'p2') ON CONFLICT DO NOTHING",
      );
      const foreign = await createIssue(client, { ...issue("foreign"), projectId: 2 });
      expect(await mergeIssues(client, 1, [parent, foreign])).toBeNull();
      expect(await mergeIssues(client, 1, [parent, child])).not.toBeNull();
      await pool.query(
        `INSERT INTO events (project_id, event_id, received_at, "timestamp", payload, issue_id, processed_at, primary_hash)
         VALUES (1, gen_random_uuid(), now(), $1, '{"message": "split"}', $2, now(), 'split-c'),
                (1, gen_random_uuid(), now(), $1, '{"message": "stays"}', $2, now(), 'split-p')`,
        [at, parent],
      );
      const result = await unmergeHashes(client, 1, parent, ["split-c", "nope"], () => ({
        ...issue("split out"),
      }));
      if (typeof result === "string") throw new Error(result);
      expect(result.events).toBe(1);
      const rows = await pool.query(
        `SELECT h.hash, (SELECT count(*)::int FROM events e WHERE e.issue_id = h.issue_id) AS events
           FROM issue_hashes h WHERE h.issue_id = $1`,
        [result.issueId],
      );
      expect(rows.rows).toEqual([{ hash: "split-c", events: 1 }]);
      expect(await unmergeHashes(client, 1, parent, ["split-c"], () => issue("x"))).toBe(
        "no-such-hash",
      );
      expect(await unmergeHashes(client, 1, child, ["split-p"], () => issue("x"))).toBe(
        "issue-merged",
      );
    } finally {
      client.release();
    }
  });
});
