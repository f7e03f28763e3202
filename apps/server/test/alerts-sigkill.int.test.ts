import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpReceiver, startHttpReceiver } from "./alert-receivers.ts";
import {
  api,
  createTestDatabase,
  deleteQueueKeys,
  REDIS_URL,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";
import { startNode, type Version } from "./processes.ts";

const current: Version = { label: "current", root: new URL("../../../", import.meta.url).pathname };

describe("an alert delivery whose worker is SIGKILLed while the receiver holds the request", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ingest: TestSluice;
  let receiver: HttpReceiver;
  const children: ChildProcess[] = [];
  const prefix = `sluice-alerts-kill-${Date.now()}`;
  const dataDir = mkdtempSync(join(tmpdir(), "sluice-alerts-kill-"));

  beforeAll(async () => {
    receiver = await startHttpReceiver();
    database = await createTestDatabase();
    ingest = await startTestSluice({
      roles: "ingest,api",
      databaseUrl: database.url,
      queuePrefix: prefix,
    });
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await ingest?.stop();
    await deleteQueueKeys(prefix);
    await database?.drop();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("is delivered, and the duplicate carries the same idempotency key", async () => {
    expect(
      (
        await api(ingest, "/api/0/projects/sluice/default/plugins/webhooks/", {
          method: "PUT",
          body: JSON.stringify({ urls: `${receiver.url}/hook` }),
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await api(ingest, "/api/0/projects/sluice/default/rules/", {
          method: "POST",
          body: JSON.stringify({
            name: "new issues",
            actionMatch: "all",
            frequency: 30,
            conditions: [
              { id: "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition" },
            ],
            actions: [
              {
                id: "sentry.rules.actions.notify_event_service.NotifyEventServiceAction",
                service: "webhooks",
              },
            ],
          }),
        })
      ).status,
    ).toBe(200);
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL,
      SLUICE_QUEUE_PREFIX: prefix,
      SLUICE_DATA_DIR: dataDir,
      SLUICE_ALERT_TIMEOUT_MS: "30000",
      // The receiver is on 127.0.0.1.
      SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS: "true",
    };
    // The receiver holds its answer, so the worker is killed mid-request.
    receiver.delayMs = 60_000;
    const doomed = await startNode(current, "worker,alerts", env, children);
    const id = crypto.randomUUID().replaceAll("-", "");
    const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"killed mid-delivery","level":"error"}\n`;
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    await waitFor(async () => receiver.received.length === 1, 30_000, "the first request");
    doomed.child.kill("SIGKILL");
    await new Promise((resolve) => doomed.child.once("exit", resolve));
    receiver.delayMs = 0;

    // BullMQ gives the stalled job back once its 20 s lock expires; the next worker sends it.
    await startNode(current, "worker,alerts", env, children);
    await waitFor(
      async () =>
        (await ingest.sql.query("SELECT 1 FROM alert_deliveries WHERE status = 'delivered'"))
          .rowCount === 1,
      90_000,
      "the delivery recorded",
    );
    const keys = receiver.received.map((r) => r.headers["idempotency-key"]);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    expect(new Set(keys).size).toBe(1);
    const { rows } = await ingest.sql.query(
      "SELECT idempotency_key::text AS key, attempts::int AS attempts FROM alert_deliveries",
    );
    expect(rows).toEqual([{ key: keys[0], attempts: 1 }]);
  }, 150_000);
});
