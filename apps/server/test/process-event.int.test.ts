import { claimIssueHashes, createIssue, insertIngestBatch } from "@sluice/db";
import { computeEventGrouping } from "@sluice/grouping";
import { normalizeEvent } from "@sluice/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventSymbolicator } from "../src/worker/event-symbolicator.ts";
import { createGroupingRulesLookup } from "../src/worker/grouping-rules-cache.ts";
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
    groupingRules: createGroupingRulesLookup(t.services.db),
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

  /** Stores one event whose compressed payload cannot be inflated, as a damaged row would be. */
  async function storeCorrupt() {
    const receivedAt = new Date();
    const eventId = crypto.randomUUID().replaceAll("-", "");
    await t.sql.query(
      `INSERT INTO events (project_id, event_id, received_at, "timestamp", payload, payload_compressed)
       VALUES ($1, $2, $3, $3, 'null'::jsonb, $4)`,
      [t.projectId, eventId, receivedAt, Buffer.from([1, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x42])],
    );
    await t.sql.query(
      "INSERT INTO event_ids (project_id, event_id, received_at) VALUES ($1, $2, $3)",
      [t.projectId, eventId, receivedAt],
    );
    return { projectId: t.projectId, eventId, receivedAt: receivedAt.toISOString() };
  }

  const failureOf = async (eventId: string) =>
    (
      await t.sql.query(
        `SELECT failures::int, last_error, failed_at IS NOT NULL AS failed
           FROM event_failures WHERE event_id = $1`,
        [eventId],
      )
    ).rows[0];

  it("marks an undecodable event failed at its first attempt, and still groups its batch-mates", async () => {
    const poison = await storeCorrupt();
    const good = await store(2, { message: "poison: batch-mate" });
    let failed = 0;
    const outcomes = await processEvents({ ...deps(), onFailed: (n) => (failed += n) }, [
      good[0] as (typeof good)[0],
      poison,
      good[1] as (typeof good)[0],
    ]);
    expect(outcomes.map((o) => (o.ok ? o.result : "error"))).toEqual([
      "grouped",
      "failed",
      "grouped",
    ]);
    expect(failed).toBe(1);
    expect(await failureOf(poison.eventId)).toEqual({
      failures: 1,
      last_error: expect.stringMatching(/^UndecodablePayload: /),
      failed: true,
    });
    // Run again (a retry, the sweeper): nothing more is counted.
    expect(await processEvent({ ...deps(), onFailed: (n) => (failed += n) }, poison)).toBe(
      "failed",
    );
    expect(failed).toBe(1);
    expect((await failureOf(poison.eventId)).failures).toBe(1);
    const issue = await t.sql.query(
      "SELECT times_seen FROM issues WHERE title = 'poison: batch-mate'",
    );
    expect(issue.rows).toEqual([{ times_seen: "2" }]);
  });

  it("retries an event that throws up to the limit, then marks it failed", async () => {
    const [job] = await store(1, { message: "poison: throws in symbolication", platform: "node" });
    if (!job) throw new Error("no job");
    const throwing = () => {
      throw Object.assign(new Error(`source map for "${job.eventId}" exploded`), { code: "EX" });
    };
    let failed = 0;
    const flaky = {
      ...deps(),
      maxFailures: 3,
      symbolicate: throwing,
      onFailed: (n: number) => (failed += n),
    };
    await expect(processEvent(flaky, job)).rejects.toThrow(/exploded/);
    await expect(processEvent(flaky, job)).rejects.toThrow(/exploded/);
    expect(await failureOf(job.eventId)).toMatchObject({ failures: 2, failed: false });
    expect(await processEvent(flaky, job)).toBe("failed");
    expect(failed).toBe(1);
    expect(await failureOf(job.eventId)).toEqual({
      failures: 3,
      last_error: 'Error: source map for "…" exploded',
      failed: true,
    });
    expect(await processEvent(deps(), job)).toBe("failed");
    expect(
      await countRows(t.sql, "events", `event_id = '${job.eventId}' AND processed_at IS NULL`),
    ).toBe(1);
  });

  it("does not count a failure of Postgres or the network against the event", async () => {
    const [job] = await store(1, { message: "poison: infrastructure", platform: "node" });
    if (!job) throw new Error("no job");
    const away = {
      ...deps(),
      maxFailures: 1,
      symbolicate: () => {
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
          code: "ECONNREFUSED",
        });
      },
    };
    await expect(processEvent(away, job)).rejects.toThrow(/ECONNREFUSED/);
    expect(await failureOf(job.eventId)).toBeUndefined();
    expect(await processEvent(deps(), job)).toBe("grouped");
  });

  /**
   * An issue as the previous grouping config (`legacy`) made it: owning only
   * the legacy hash of an event whose hash the current config changed (a
   * file:// frame: legacy dropped its filename, the current keeps it). The
   * frame's function is named after `value`, so that each call's legacy
   * hash is its own.
   */
  async function issueGroupedBeforeTheUpgrade(value: string) {
    const payload = {
      platform: "node",
      exception: {
        values: [
          {
            type: "UpgradeError",
            value,
            stacktrace: {
              frames: [
                {
                  abs_path: "file:///srv/app/main.js",
                  filename: "/srv/app/main.js",
                  function: value.replaceAll(" ", "_"),
                  lineno: 3,
                  in_app: true,
                },
              ],
            },
          },
        ],
      },
    };
    const now = new Date();
    const grouping = computeEventGrouping(
      normalizeEvent(structuredClone(payload), {
        eventId: "0".repeat(32),
        timestamp: now,
        receivedAt: now,
      }),
    );
    const legacy = grouping.secondaryHashes[0];
    if (!legacy) throw new Error("the two configs must disagree for this test to mean anything");
    const client = await t.services.db.pool.connect();
    try {
      const issueId = await createIssue(client, {
        projectId: t.projectId,
        type: "error",
        title: `UpgradeError: ${value}`,
        culprit: "run",
        level: "error",
        platform: "node",
        logger: null,
        metadata: {},
        seenAt: new Date(),
        release: null,
      });
      await claimIssueHashes(client, [{ ...legacy, projectId: t.projectId, issueId }]);
      return { payload, grouping, legacy, issueId };
    } finally {
      client.release();
    }
  }

  /** Sets the test project's grouping config transition to end `seconds` from now (null: none). */
  async function transitionEndsIn(seconds: number | null) {
    await t.sql.query(
      "UPDATE projects SET secondary_grouping_expiry = now() + make_interval(secs => $2) WHERE id = $1",
      [t.projectId, seconds],
    );
  }

  async function issuesOf(jobs: { eventId: string }[]) {
    const linked = await t.sql.query(
      "SELECT DISTINCT issue_id FROM events WHERE event_id = ANY($1::uuid[])",
      [jobs.map((j) => j.eventId)],
    );
    return linked.rows.map((r) => Number(r.issue_id));
  }

  it("puts an event into the issue its previous grouping config made while the project's transition lasts, and gives that issue its new hash", async () => {
    const old = await issueGroupedBeforeTheUpgrade("grouped before the upgrade");
    await transitionEndsIn(3600);
    try {
      const jobs = await store(2, old.payload);
      const [first, second] = jobs;
      if (!first || !second) throw new Error("no jobs");
      expect(await processEvent(deps(), first)).toBe("grouped");
      expect(await processEvent(deps(), second)).toBe("grouped");
      expect(await issuesOf(jobs)).toEqual([old.issueId]);
      const hashes = await t.sql.query(
        "SELECT hash FROM issue_hashes WHERE issue_id = $1 ORDER BY hash",
        [old.issueId],
      );
      expect(hashes.rows.map((r) => r.hash).sort()).toEqual(
        [old.legacy.hash, ...old.grouping.hashes.map((h) => h.hash)].sort(),
      );
    } finally {
      await transitionEndsIn(null);
    }
  });

  it("computes no previous-config hashes for a project created under the current config, or once its transition ended", async () => {
    const projectRow = await t.sql.query(
      "SELECT secondary_grouping_expiry FROM projects WHERE id = $1",
      [t.projectId],
    );
    expect(projectRow.rows).toEqual([{ secondary_grouping_expiry: null }]);
    const none = await issueGroupedBeforeTheUpgrade("a project without a transition");
    const [fresh] = await store(1, none.payload);
    if (!fresh) throw new Error("no job");
    expect(await processEvent(deps(), fresh)).toBe("grouped");
    const [freshIssue] = await issuesOf([fresh]);
    expect(freshIssue).toBeDefined();
    expect(freshIssue).not.toBe(none.issueId);

    const ended = await issueGroupedBeforeTheUpgrade("a transition that ended");
    await transitionEndsIn(-1);
    try {
      const [late] = await store(1, ended.payload);
      if (!late) throw new Error("no job");
      expect(await processEvent(deps(), late)).toBe("grouped");
      expect(await issuesOf([late])).not.toContain(ended.issueId);
    } finally {
      await transitionEndsIn(null);
    }
  });
});
