import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  countRows,
  createTestDatabase,
  deleteQueueKeys,
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
  afterAll(async () => {
    await ingest?.stop();
    await deleteQueueKeys(prefix);
    await database?.drop();
  });

  it("groups every event after Redis lost all their jobs", async () => {
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    for (let i = 0; i < 30; i++) {
      const id = crypto.randomUUID().replaceAll("-", "");
      const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"swept ${i}","level":"error"}\n`;
      expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    }
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
