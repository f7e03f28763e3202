import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpReceiver, startHttpReceiver } from "./alert-receivers.ts";
import {
  api,
  createTestDatabase,
  deleteQueueKeys,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";

const FIRST_SEEN = "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition";
const SLACK = "sentry.integrations.slack.notify_action.SlackNotifyServiceAction";
const DISCORD = "sentry.integrations.discord.notify_action.DiscordNotifyServiceAction";
const TEAMS = "sentry.integrations.msteams.notify_action.MsTeamsNotifyServiceAction";

/** A JSON answer, read loosely: the assertions check its shape. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions walk API answers.
type Json = any;

describe("alert destinations on the node's own network, with SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS off", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  /** Allows private destinations (as the other tests do): it saves what the guarded node refuses. */
  let open: TestSluice;
  /** The guard on: its API refuses such URLs, its worker and alerts roles never connect to them. */
  let guarded: TestSluice;
  let receiver: HttpReceiver;
  const prefix = `sluice-alert-guard-${randomUUID().slice(0, 8)}`;
  let urls: Record<string, string>;

  beforeAll(async () => {
    receiver = await startHttpReceiver();
    const port = new URL(receiver.url).port;
    urls = {
      loopback: `${receiver.url}/hook`,
      metadata: "http://169.254.169.254/latest/meta-data/",
      ipv6: `http://[::1]:${port}/hook`,
      name: `http://localhost:${port}/hook`,
    };
    database = await createTestDatabase();
    const shared = { databaseUrl: database.url, queuePrefix: prefix };
    open = await startTestSluice({ ...shared, roles: "ingest,api" });
    guarded = await startTestSluice({
      ...shared,
      roles: "api,worker,alerts",
      env: { SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS: "false", SLUICE_ALERT_TIMEOUT_MS: "2000" },
    });
  });
  afterAll(async () => {
    await guarded?.stop();
    await open?.stop();
    await deleteQueueKeys(prefix);
    await database?.drop();
    await receiver?.close();
  });

  const rule = (webhook: string) => ({
    name: "chat",
    actionMatch: "all",
    frequency: 30,
    conditions: [{ id: FIRST_SEEN }],
    actions: [{ id: SLACK, webhook }],
  });

  it("refuses them when saved: webhooks plugin URLs and chat webhooks, 400 by field", async () => {
    const expected: Record<string, RegExp> = {
      loopback: /127\.0\.0\.1 is a loopback address/,
      metadata: /169\.254\.169\.254 is a linkLocal address/,
      ipv6: /::1 is a loopback address/,
      name: /localhost \((127\.0\.0\.1|::1)\) is a loopback address/,
    };
    for (const [kind, url] of Object.entries(urls)) {
      const plugin = await api(guarded, "/api/0/projects/sluice/default/plugins/webhooks/", {
        method: "PUT",
        body: JSON.stringify({ urls: url }),
      });
      expect(plugin.status, kind).toBe(400);
      const pluginBody = (await plugin.json()) as Json;
      expect(pluginBody.urls?.[0], kind).toMatch(expected[kind] as RegExp);
      expect(pluginBody.detail, kind).toMatch(/^urls: /);

      const created = await api(guarded, "/api/0/projects/sluice/default/rules/", {
        method: "POST",
        body: JSON.stringify(rule(url)),
      });
      expect(created.status, kind).toBe(400);
      expect(((await created.json()) as Json).actions?.[0], kind).toMatch(expected[kind] as RegExp);
    }
    const ftp = await api(guarded, "/api/0/projects/sluice/default/rules/", {
      method: "POST",
      body: JSON.stringify(rule("ftp://example.com/hook")),
    });
    expect(ftp.status).toBe(400);
    expect((await api(guarded, "/api/0/projects/sluice/default/rules/")).status).toBe(200);
    expect(await (await api(guarded, "/api/0/projects/sluice/default/rules/")).json()).toEqual([]);
  });

  it("never connects to them when sending, though a node without the guard saved them", async () => {
    const plugin = await api(open, "/api/0/projects/sluice/default/plugins/webhooks/", {
      method: "PUT",
      body: JSON.stringify({ urls: Object.values(urls).join("\n") }),
    });
    expect(plugin.status).toBe(200);
    const created = await api(open, "/api/0/projects/sluice/default/rules/", {
      method: "POST",
      body: JSON.stringify({
        ...rule(urls.name as string),
        actions: [
          {
            id: "sentry.rules.actions.notify_event_service.NotifyEventServiceAction",
            service: "webhooks",
          },
          { id: SLACK, webhook: urls.name },
          { id: DISCORD, webhook: urls.ipv6 },
          { id: TEAMS, webhook: urls.metadata },
        ],
      }),
    });
    expect(created.status).toBe(200);

    const id = randomUUID().replaceAll("-", "");
    const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"guarded","level":"error"}\n`;
    const url = `${open.url}/api/${open.projectId}/envelope/?sentry_key=${open.publicKey}`;
    expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    const deliveries = async () =>
      (
        await open.sql.query(
          "SELECT action_type, target, status, attempts::int, last_error FROM alert_deliveries ORDER BY id",
        )
      ).rows;
    await waitFor(
      async () => {
        const rows = await deliveries();
        return rows.length === 7 && rows.every((d) => d.status !== "pending");
      },
      30_000,
      "every delivery ended",
    );
    const rows = await deliveries();
    // Refused for good on the first attempt: a retry would not make the address public.
    for (const d of rows) {
      expect(d.status, d.target).toBe("failed");
      expect(d.attempts, d.target).toBe(1);
      expect(d.last_error, d.target).toMatch(/is a (loopback|linkLocal) address/);
    }
    expect(rows.find((d) => d.target === urls.name)?.last_error).toMatch(/localhost \(/);
    expect(receiver.received).toHaveLength(0);
    const [shown] = (await (
      await api(open, "/api/0/projects/sluice/default/rules/")
    ).json()) as Json;
    expect(shown.deliveries).toMatchObject({ sent: 0, failed: 7, pending: 0 });
    expect(shown.lastError.message).toMatch(/alerts go only to public addresses/);
  });
});
