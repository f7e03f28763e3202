import {
  compressPayload,
  decompressPayload,
  insertIngestBatch,
  removeNode,
  upsertNode,
} from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventSymbolicator } from "../src/worker/event-symbolicator.ts";
import { createGroupingRulesLookup } from "../src/worker/grouping-rules-cache.ts";
import { processEvent } from "../src/worker/process-event.ts";
import { createReleaseSeenRecorder } from "../src/worker/release-seen.ts";
import { api, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

const frames = Array.from({ length: 15 }, (_, i) => ({
  filename: `/srv/app/lib/module-${i}.js`,
  function: `step${i}`,
  lineno: 10 + i,
  colno: 5,
  in_app: true,
  context_line: `  return step${i + 1}(input);`,
}));

const errorEvent = (eventId: string, value: string) => ({
  event_id: eventId,
  platform: "node",
  level: "error",
  environment: "production",
  user: { id: "user-1" },
  tags: { region: "eu" },
  exception: { values: [{ type: "StorageError", value, stacktrace: { frames } }] },
});

// Each storage beside the rows the storage before it leaves (README "Upgrading"):
// `compressed` nodes beside jsonb rows, `zstd` nodes beside deflate rows.
describe.each([
  { storage: "compressed", format: 1, earlier: "jsonb" },
  { storage: "zstd", format: 2, earlier: "compressed" },
] as const)("SLUICE_PAYLOAD_STORAGE=$storage", ({ storage, format, earlier }) => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ env: { SLUICE_PAYLOAD_STORAGE: storage } });
  });
  afterAll(async () => t?.stop());

  it(`stores the payload as format ${format}, groups it, serves it, and reads ${earlier} rows beside it`, async () => {
    const eventId = crypto.randomUUID().replaceAll("-", "");
    const sent = errorEvent(eventId, "disk full");
    const body = `${JSON.stringify({ event_id: eventId })}\n${JSON.stringify({ type: "event" })}\n${JSON.stringify(sent)}\n`;
    const response = await fetch(
      `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`,
      { method: "POST", body },
    );
    expect(response.status).toBe(200);
    await waitFor(
      async () =>
        (await t.sql.query("SELECT 1 FROM events WHERE processed_at IS NOT NULL")).rowCount === 1,
      10_000,
      "the event processed",
    );

    const row = await t.sql.query(
      `SELECT jsonb_typeof(payload) AS kind, payload_compressed, issue_id::int AS "issueId"
         FROM events WHERE event_id = $1`,
      [eventId],
    );
    const stored = row.rows[0];
    expect(stored.kind).toBe("null");
    expect(stored.payload_compressed[0]).toBe(format);
    expect(stored.payload_compressed.length).toBeLessThan(JSON.stringify(sent).length / 3);
    expect(decompressPayload(stored.payload_compressed)).toEqual(sent);

    const json = await (
      await api(t, `/api/0/projects/sluice/default/events/${eventId}/json/`)
    ).json();
    expect(json).toMatchObject({
      event_id: eventId,
      user: { id: "user-1" },
      tags: { region: "eu" },
    });
    const detail = await (await api(t, `/api/0/projects/sluice/default/events/${eventId}/`)).json();
    expect(detail).toMatchObject({ eventID: eventId, groupID: String(stored.issueId) });

    // A row as a node of the earlier storage (or release) stores it, in the same issue.
    const older = crypto.randomUUID().replaceAll("-", "");
    const receivedAt = new Date();
    const olderEvent = errorEvent(older, "disk full again");
    await insertIngestBatch(t.services.db.pool, {
      events: [
        {
          projectId: t.projectId,
          eventId: older,
          receivedAt,
          timestamp: receivedAt,
          keyId: 1,
          ...(earlier === "jsonb"
            ? { payloadText: JSON.stringify(olderEvent) }
            : { payloadCompressed: compressPayload(JSON.stringify(olderEvent), earlier) }),
        },
      ],
      attachments: [],
      outcomes: [],
    });
    const deps = {
      db: t.services.db,
      log: t.services.log,
      symbolicate: createEventSymbolicator(t.services.db, t.services.blobs, 1024 * 1024),
      recordRelease: createReleaseSeenRecorder(t.services.db),
      groupingRules: createGroupingRulesLookup(t.services.db),
    };
    const job = { projectId: t.projectId, eventId: older, receivedAt: receivedAt.toISOString() };
    expect(["grouped", "already-processed"]).toContain(await processEvent(deps, job));
    const olderRow = await t.sql.query(
      `SELECT jsonb_typeof(payload) AS kind, get_byte(payload_compressed, 0) AS format,
              issue_id::int AS "issueId"
         FROM events WHERE event_id = $1`,
      [older],
    );
    expect(olderRow.rows[0]).toEqual(
      earlier === "jsonb"
        ? { kind: "object", format: null, issueId: stored.issueId }
        : { kind: "null", format: 1, issueId: stored.issueId },
    );

    const listed = (await (
      await api(t, `/api/0/issues/${stored.issueId}/events/?full=true`)
    ).json()) as { eventID: string }[];
    expect(listed.map((e) => e.eventID).sort()).toEqual([eventId, older].sort());
    const issue = await t.sql.query("SELECT times_seen::int FROM issues WHERE id = $1", [
      stored.issueId,
    ]);
    expect(issue.rows[0].times_seen).toBe(2);
  });
});

describe("SLUICE_PAYLOAD_STORAGE=zstd beside a node that cannot read it", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({
      env: { SLUICE_PAYLOAD_STORAGE: "zstd", SLUICE_NODE_HEARTBEAT_MS: "100" },
    });
  });
  afterAll(async () => t?.stop());

  /** Sends one event and returns the format byte of its stored payload. */
  async function storedFormat(): Promise<number> {
    const eventId = crypto.randomUUID().replaceAll("-", "");
    const body = `${JSON.stringify({ event_id: eventId })}\n${JSON.stringify({ type: "event" })}\n${JSON.stringify(errorEvent(eventId, "format"))}\n`;
    const response = await fetch(
      `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`,
      { method: "POST", body },
    );
    expect(response.status).toBe(200);
    const row = await t.sql.query(
      "SELECT get_byte(payload_compressed, 0) AS format FROM events WHERE event_id = $1",
      [eventId],
    );
    return row.rows[0].format;
  }

  it("stores deflate while a 0.5.0 node is live, and zstd once it has left", async () => {
    await waitFor(async () => (await storedFormat()) === 2, 5_000, "zstd with no older node");
    const older = {
      id: "old-host:1:x",
      host: "old-host",
      release: "0.5.0",
      commit: "0".repeat(40),
      roles: ["worker"],
      schemaVersion: 14,
      ready: true,
      startedAt: new Date(),
    };
    await upsertNode(t.services.db.pool, older);
    await waitFor(async () => (await storedFormat()) === 1, 5_000, "deflate beside 0.5.0");
    // Every check while it stays live keeps deflate.
    await new Promise((r) => setTimeout(r, 300));
    await upsertNode(t.services.db.pool, older);
    expect(await storedFormat()).toBe(1);
    await removeNode(t.services.db.pool, older.id);
    await waitFor(async () => (await storedFormat()) === 2, 5_000, "zstd once 0.5.0 left");
  });
});
