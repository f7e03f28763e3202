import { createHmac, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type HttpReceiver,
  type Mail,
  startHttpReceiver,
  startSmtpServer,
} from "./alert-receivers.ts";
import {
  api,
  createTestDatabase,
  deleteQueueKeys,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";

const FIRST_SEEN = "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition";
const REGRESSION = "sentry.rules.conditions.regression_event.RegressionEventCondition";
const FREQUENCY = "sentry.rules.conditions.event_frequency.EventFrequencyCondition";
const WEBHOOKS = {
  id: "sentry.rules.actions.notify_event_service.NotifyEventServiceAction",
  service: "webhooks",
};
const EMAIL = {
  id: "sentry.mail.actions.NotifyEmailAction",
  targetType: "Addresses",
  targetIdentifier: "ops@example.com",
};

/** A JSON answer, read loosely: the assertions check its shape. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions walk API answers.
type Json = any;
const json = async (response: Response): Promise<Json> => response.json();

type Webhook = { id: string; triggering_rules: string[]; url: string; event: { event_id: string } };

describe("issue alerts, with an ingest node and two workers", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ingest: TestSluice;
  let workers: TestSluice[] = [];
  let receiver: HttpReceiver;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let secret: string;
  const prefix = `sluice-alerts-${randomUUID().slice(0, 8)}`;
  const run = randomUUID().slice(0, 8);

  beforeAll(async () => {
    receiver = await startHttpReceiver();
    smtp = await startSmtpServer();
    database = await createTestDatabase();
    const shared = { databaseUrl: database.url, queuePrefix: prefix };
    ingest = await startTestSluice({ ...shared, roles: "ingest,api" });
    const env = { SLUICE_SMTP_URL: smtp.url, SLUICE_ALERT_TIMEOUT_MS: "2000" };
    workers = [
      await startTestSluice({ ...shared, roles: "worker,alerts", env }),
      await startTestSluice({ ...shared, roles: "worker,alerts", env }),
    ];
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await ingest?.stop();
    await deleteQueueKeys(prefix);
    await database?.drop();
    await receiver?.close();
    await smtp?.close();
  });

  const send = async (message: string, extra: Record<string, unknown> = {}) => {
    const id = randomUUID().replaceAll("-", "");
    const event = JSON.stringify({ event_id: id, message, level: "error", ...extra });
    const body = `{"event_id":"${id}"}\n{"type":"event"}\n${event}\n`;
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    const response = await fetch(url, { method: "POST", body });
    expect(response.status).toBe(200);
    return id;
  };
  const issueOf = async (eventId: string): Promise<number> => {
    await waitFor(
      async () =>
        (
          await ingest.sql.query(
            "SELECT 1 FROM events WHERE event_id = $1 AND processed_at IS NOT NULL",
            [eventId],
          )
        ).rowCount === 1,
      20_000,
      "the event processed",
    );
    const { rows } = await ingest.sql.query(
      "SELECT issue_id::int AS id FROM events WHERE event_id = $1",
      [eventId],
    );
    return rows[0].id;
  };
  const hooks = (issueId: number, rule: string) =>
    receiver.received.filter((r) => {
      const body = r.body as Webhook;
      return body?.id === String(issueId) && body.triggering_rules?.includes(rule);
    });
  const mailsFor = (issueId: number): Mail[] =>
    smtp.mails.filter((m) => m.raw.includes(`/issues/${issueId}/`));
  const createRule = async (rule: Record<string, unknown>) => {
    const response = await api(ingest, "/api/0/projects/sluice/default/rules/", {
      method: "POST",
      body: JSON.stringify(rule),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as { id: string };
  };
  /** Lets two pollers and both workers run a while, to see nothing more arrives. */
  const settle = () => new Promise((r) => setTimeout(r, 3_000));

  it("configures the webhooks plugin and rules in Sentry's shapes, and refuses bad rules like Sentry", async () => {
    const put = await api(ingest, "/api/0/projects/sluice/default/plugins/webhooks/", {
      method: "PUT",
      body: JSON.stringify({ urls: `${receiver.url}/hook\n\n` }),
    });
    expect(put.status).toBe(200);
    const plugin = await json(put);
    expect(plugin.enabled).toBe(true);
    expect(plugin.config[0]).toMatchObject({ name: "urls", value: `${receiver.url}/hook` });
    secret = plugin.signingSecret;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const bad = await api(ingest, "/api/0/projects/sluice/default/plugins/webhooks/", {
      method: "PUT",
      body: JSON.stringify({ urls: "ftp://nope" }),
    });
    expect(bad.status).toBe(400);

    const refused = async (rule: Record<string, unknown>, field: string, text: RegExp) => {
      const response = await api(ingest, "/api/0/projects/sluice/default/rules/", {
        method: "POST",
        body: JSON.stringify(rule),
      });
      expect(response.status).toBe(400);
      const body = await json(response);
      expect(body.detail).toBeTypeOf("string");
      expect(body[field]?.[0]).toMatch(text);
    };
    const ok = {
      name: "x",
      actionMatch: "any",
      frequency: 5,
      conditions: [{ id: FIRST_SEEN }],
      actions: [WEBHOOKS],
    };
    await refused({ ...ok, actions: [] }, "actions", /Must select an action/);
    await refused({ ...ok, conditions: [] }, "conditions", /Must select a condition/);
    await refused(
      { ...ok, conditions: [{ id: "sentry.rules.conditions.nope" }] },
      "conditions",
      /Invalid node/,
    );
    await refused({ ...ok, frequency: 1 }, "frequency", /greater than or equal to 5/);
    await refused({ ...ok, actionMatch: "some" }, "actionMatch", /./);
    await refused({ ...ok, name: undefined }, "name", /required/);
    await refused(
      {
        ...ok,
        filters: [{ id: "sentry.rules.filters.level.LevelFilter", match: "gte", level: "40" }],
      },
      "filterMatch",
      /Must select a filter match/,
    );
    await refused(
      { ...ok, actions: [{ ...EMAIL, targetType: "Member", targetIdentifier: 999999 }] },
      "actions",
      /not a member of the organization/,
    );

    const created = await createRule({
      name: "new issues",
      actionMatch: "all",
      filterMatch: "all",
      frequency: 30,
      conditions: [{ id: FIRST_SEEN }],
      filters: [{ id: "sentry.rules.filters.level.LevelFilter", match: "gte", level: "40" }],
      actions: [WEBHOOKS, EMAIL],
    });
    const got = await json(
      await api(ingest, `/api/0/projects/sluice/default/rules/${created.id}/`),
    );
    expect(got).toMatchObject({
      id: created.id,
      name: "new issues",
      actionMatch: "all",
      filterMatch: "all",
      frequency: 30,
      environment: null,
      projects: ["default"],
      conditions: [{ id: FIRST_SEEN, name: "A new issue is created" }],
      deliveries: { sent: 0, failed: 0, pending: 0 },
      lastError: null,
    });
    await createRule({
      name: "regressions",
      actionMatch: "all",
      frequency: 5,
      conditions: [{ id: REGRESSION }],
      actions: [WEBHOOKS],
    });
    await createRule({
      name: "bursts",
      actionMatch: "all",
      frequency: 30,
      environment: "burst",
      conditions: [{ id: FREQUENCY, value: 5, interval: "1m" }],
      actions: [WEBHOOKS],
    });
    const list = await json(await api(ingest, "/api/0/projects/sluice/default/rules/"));
    expect(list.map((r: { name: string }) => r.name)).toEqual([
      "new issues",
      "regressions",
      "bursts",
    ]);

    // PUT changes what it names; DELETE answers 202 and the rule is gone.
    const temp = await createRule({ ...ok, name: "temporary" });
    const renamed = await api(ingest, `/api/0/projects/sluice/default/rules/${temp.id}/`, {
      method: "PUT",
      body: JSON.stringify({ name: "renamed" }),
    });
    expect(renamed.status).toBe(200);
    expect((await json(renamed)).name).toBe("renamed");
    const deleted = await api(ingest, `/api/0/projects/sluice/default/rules/${temp.id}/`, {
      method: "DELETE",
    });
    expect(deleted.status).toBe(202);
    expect((await api(ingest, `/api/0/projects/sluice/default/rules/${temp.id}/`)).status).toBe(
      404,
    );
    expect((await api(ingest, "/api/0/projects/sluice/nope/rules/")).status).toBe(404);
  });

  let first: number;
  it("sends one signed webhook and one email for a new issue, and none when it is seen again", async () => {
    const eventId = await send(`new issue ${run}`);
    first = await issueOf(eventId);
    await waitFor(
      async () => hooks(first, "new issues").length >= 1 && mailsFor(first).length >= 1,
      20_000,
      "the alerts",
    );
    await settle();
    const [hook] = hooks(first, "new issues");
    expect(hooks(first, "new issues")).toHaveLength(1);
    expect(mailsFor(first)).toHaveLength(1);
    const body = hook?.body as Webhook & Record<string, unknown>;
    expect(body).toMatchObject({
      id: String(first),
      project: "default",
      project_name: "default",
      project_slug: "default",
      level: "error",
      message: `new issue ${run}`,
      triggering_rules: ["new issues"],
      event: { event_id: eventId, id: eventId },
    });
    expect(body.url).toMatch(
      new RegExp(`/organizations/sluice/issues/${first}/\\?referrer=webhooks_plugin$`),
    );
    expect(hook?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(hook?.headers["sentry-hook-signature"]).toBe(
      createHmac("sha256", secret)
        .update(hook?.raw ?? "")
        .digest("hex"),
    );
    const [mail] = mailsFor(first);
    expect(mail?.to).toEqual(["ops@example.com"]);
    expect(mail?.raw).toContain(`new issue ${run}`);
    // The email carries its delivery's key twice: as a header and in the Message-ID.
    const key = /Idempotency-Key: ([0-9a-f-]{36})/.exec(mail?.raw ?? "")?.[1];
    expect(key).toBeDefined();
    expect(mail?.raw).toContain(`Message-ID: <${key}@sluice>`);

    await issueOf(await send(`new issue ${run}`));
    await settle();
    expect(hooks(first, "new issues")).toHaveLength(1);
    expect(mailsFor(first)).toHaveLength(1);
    const rules = await json(await api(ingest, "/api/0/projects/sluice/default/rules/"));
    expect(rules[0].deliveries).toMatchObject({ sent: 2, failed: 0, pending: 0 });
  });

  it("sends one regression alert when a resolved issue sees the error again", async () => {
    const resolved = await api(ingest, `/api/0/organizations/sluice/issues/${first}/`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved" }),
    });
    expect(resolved.status).toBe(200);
    await issueOf(await send(`new issue ${run}`));
    await waitFor(
      async () => hooks(first, "regressions").length >= 1,
      20_000,
      "the regression alert",
    );
    await issueOf(await send(`new issue ${run}`));
    await settle();
    expect(hooks(first, "regressions")).toHaveLength(1);
    expect(hooks(first, "new issues")).toHaveLength(1);
  });

  it("sends one alert when an issue passes 5 events in a minute, with 10", async () => {
    // Ten events inside one minute window: start early in a minute.
    while (new Date().getSeconds() > 40) await new Promise((r) => setTimeout(r, 1_000));
    const ids: string[] = [];
    // One at a time, each processed before the next, so each is its own
    // batch: the count passes 5 at the sixth and stays past it for four more.
    for (let i = 0; i < 10; i++) {
      const id = await send(`burst ${run}`, { environment: "burst" });
      await issueOf(id);
      ids.push(id);
    }
    const burst = await issueOf(ids[0] as string);
    await waitFor(async () => hooks(burst, "bursts").length >= 1, 20_000, "the frequency alert");
    await settle();
    expect(hooks(burst, "bursts")).toHaveLength(1);
  });

  it("posts Slack, Discord and Teams incoming-webhook messages that link to the issue", async () => {
    await createRule({
      name: "chat",
      actionMatch: "all",
      frequency: 30,
      environment: "chat",
      conditions: [{ id: FIRST_SEEN }],
      actions: [
        {
          id: "sentry.integrations.slack.notify_action.SlackNotifyServiceAction",
          webhook: `${receiver.url}/slack`,
        },
        {
          id: "sentry.integrations.discord.notify_action.DiscordNotifyServiceAction",
          webhook: `${receiver.url}/discord`,
        },
        {
          id: "sentry.integrations.msteams.notify_action.MsTeamsNotifyServiceAction",
          webhook: `${receiver.url}/teams`,
        },
      ],
    });
    const issue = await issueOf(
      await send(`chat ${run}`, { environment: "chat", release: "web@2" }),
    );
    const at = (path: string) => receiver.received.filter((r) => r.path === path);
    await waitFor(
      async () => at("/slack").length + at("/discord").length + at("/teams").length >= 3,
      20_000,
      "the chat messages",
    );
    await settle();
    const link = `/organizations/sluice/issues/${issue}/`;
    for (const path of ["/slack", "/discord", "/teams"]) {
      expect(at(path)).toHaveLength(1);
      expect(at(path)[0]?.raw).toContain(link);
      expect(at(path)[0]?.raw).toContain("web@2");
      expect(at(path)[0]?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
      // Only the webhooks plugin is signed.
      expect(at(path)[0]?.headers["sentry-hook-signature"]).toBeUndefined();
    }
    expect(at("/slack")[0]?.body).toMatchObject({ text: expect.stringContaining(`chat ${run}`) });
    expect(at("/discord")[0]?.body).toMatchObject({
      embeds: [{ url: expect.stringContaining(link) }],
    });
    expect(at("/teams")[0]?.body).toMatchObject({ type: "message" });
  });

  it("counts each user once for a unique-user frequency condition", async () => {
    await createRule({
      name: "users",
      actionMatch: "all",
      frequency: 30,
      environment: "users",
      conditions: [
        {
          id: "sentry.rules.conditions.event_frequency.EventUniqueUserFrequencyCondition",
          value: 2,
          interval: "1h",
        },
      ],
      actions: [WEBHOOKS],
    });
    const as = (user: string) => send(`users ${run}`, { environment: "users", user: { id: user } });
    const issue = await issueOf(await as("a"));
    await issueOf(await as("a"));
    await issueOf(await as("b"));
    await settle();
    expect(hooks(issue, "users")).toHaveLength(0);
    await issueOf(await as("c"));
    await waitFor(async () => hooks(issue, "users").length >= 1, 20_000, "the unique-user alert");
    await issueOf(await as("d"));
    await settle();
    expect(hooks(issue, "users")).toHaveLength(1);
  });

  it("delivers once when the receiver was down, and shows the error on the rule meanwhile", async () => {
    await receiver.down();
    const issue = await issueOf(await send(`while down ${run}`));
    await waitFor(
      async () =>
        (
          await ingest.sql.query(
            `SELECT 1 FROM alert_deliveries d JOIN alert_firings f ON f.id = d.firing_id
              WHERE f.issue_id = $1 AND d.action_type = 'webhooks' AND d.attempts >= 2`,
            [issue],
          )
        ).rowCount === 1,
      20_000,
      "two failed attempts",
    );
    const rules = await json(await api(ingest, "/api/0/projects/sluice/default/rules/"));
    expect(rules[0].lastError.message).toMatch(/webhooks 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expect(rules[0].deliveries.pending).toBe(1);
    await receiver.up();
    await waitFor(async () => hooks(issue, "new issues").length >= 1, 30_000, "the late delivery");
    await settle();
    expect(hooks(issue, "new issues")).toHaveLength(1);
    const after = await json(await api(ingest, "/api/0/projects/sluice/default/rules/"));
    expect(after[0].deliveries.pending).toBe(0);

    const metrics = await (
      await Promise.all(workers.map((w) => fetch(`${w.metricsUrl}/metrics`).then((r) => r.text())))
    ).join("\n");
    expect(metrics).toMatch(
      /sluice_alert_notifications_total\{action="webhooks",outcome="delivered"\} \d/,
    );
    expect(metrics).toMatch(
      /sluice_alert_notifications_total\{action="webhooks",outcome="retry"\} \d/,
    );
    expect(metrics).toMatch(
      /sluice_alert_notifications_total\{action="email",outcome="delivered"\} \d/,
    );
  });
});

describe("issue alerts without Redis (one process, the in-process queue)", () => {
  let t: TestSluice;
  let receiver: HttpReceiver;
  beforeAll(async () => {
    receiver = await startHttpReceiver();
    t = await startTestSluice({ redis: false });
  });
  afterAll(async () => {
    await t?.stop();
    await receiver?.close();
  });

  it("delivers one webhook for a new issue", async () => {
    const put = await api(t, "/api/0/projects/sluice/default/plugins/webhooks/", {
      method: "PUT",
      body: JSON.stringify({ urls: `${receiver.url}/hook` }),
    });
    expect(put.status).toBe(200);
    const rule = await api(t, "/api/0/projects/sluice/default/rules/", {
      method: "POST",
      body: JSON.stringify({
        name: "new issues",
        actionMatch: "all",
        frequency: 30,
        conditions: [{ id: FIRST_SEEN }],
        actions: [WEBHOOKS],
      }),
    });
    expect(rule.status).toBe(200);
    const id = randomUUID().replaceAll("-", "");
    const body = `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"embedded","level":"error"}\n`;
    const url = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
    expect((await fetch(url, { method: "POST", body })).status).toBe(200);
    await waitFor(async () => receiver.received.length >= 1, 20_000, "the webhook");
    await new Promise((r) => setTimeout(r, 2_000));
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.body).toMatchObject({ event: { event_id: id } });
  });
});
