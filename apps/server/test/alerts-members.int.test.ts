import { randomUUID } from "node:crypto";
import {
  addProjectTeam,
  addTeamMember,
  ensureOrganization,
  ensureTeam,
  findMember,
  findMembership,
  setOpenMembership,
} from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeMember } from "../src/accounts/members.ts";
import { createTestUser } from "./accounts-harness.ts";
import { type Mail, startSmtpServer } from "./alert-receivers.ts";
import {
  api,
  createTestDatabase,
  deleteQueueKeys,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";

const FIRST_SEEN = "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition";
const EMAIL = "sentry.mail.actions.NotifyEmailAction";

/** A JSON answer, read loosely: the assertions check its shape. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions walk API answers.
type Json = any;

describe("alert emails to organization members, with an ingest node and two workers", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let ingest: TestSluice;
  let workers: TestSluice[] = [];
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  const prefix = `sluice-alert-members-${randomUUID().slice(0, 8)}`;
  const run = randomUUID().slice(0, 8);
  const env = () => ({
    SLUICE_SMTP_URL: smtp.url,
    SLUICE_ALERT_TIMEOUT_MS: "2000",
  });
  /** User ids by name; every address is `{name}-{run}@example.com`. */
  const users: Record<string, number> = {};
  const address = (name: string) => `${name}-${run}@example.com`;
  let backendTeam: number;
  let frontendTeam: number;
  let otherTeam: number;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    database = await createTestDatabase();
    const shared = { databaseUrl: database.url, queuePrefix: prefix };
    ingest = await startTestSluice({ ...shared, roles: "ingest,api" });
    workers = [
      await startTestSluice({ ...shared, roles: "worker,alerts", env: env() }),
      await startTestSluice({ ...shared, roles: "worker,alerts", env: env() }),
    ];
    // Organization "sluice" without Open Membership: members see the
    // projects of their teams; managers and owners see every project.
    const { orm } = ingest.services.db;
    const org = await ensureOrganization(orm, "sluice", "sluice");
    await setOpenMembership(orm, org.id, false);
    const people: [string, "member" | "manager", string][] = [
      ["alice", "member", "sluice"],
      ["bob", "member", "sluice"],
      ["erin", "member", "sluice"],
      ["carol", "member", "sluice"],
      ["mona", "manager", "sluice"],
      ["dave", "member", "other"],
    ];
    for (const [name, role, orgSlug] of people) {
      await createTestUser(ingest, address(name), orgSlug, role);
      const { rows } = await ingest.sql.query("SELECT id::int FROM users WHERE email = $1", [
        address(name),
      ]);
      users[name] = rows[0].id;
    }
    const memberOf = async (name: string) =>
      (await findMembership(orm, org.id, users[name] as number))?.id as number;
    const backend = await ensureTeam(orm, org.id, "backend", "Backend");
    const frontend = await ensureTeam(orm, org.id, "frontend", "Frontend");
    backendTeam = backend.id;
    frontendTeam = frontend.id;
    await addProjectTeam(orm, ingest.projectId, backend.id);
    for (const name of ["alice", "bob", "erin"]) {
      await addTeamMember(orm, backend.id, await memberOf(name));
    }
    await addTeamMember(orm, frontend.id, await memberOf("carol"));
    const other = await ensureOrganization(orm, "other", "other");
    otherTeam = (await ensureTeam(orm, other.id, "backend", "Backend")).id;
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await ingest?.stop();
    await deleteQueueKeys(prefix);
    await database?.drop();
    await smtp?.close();
  });

  const send = async (message: string, extra: Record<string, unknown> = {}) => {
    const id = randomUUID().replaceAll("-", "");
    const event = JSON.stringify({ event_id: id, message, level: "error", ...extra });
    const body = `{"event_id":"${id}"}\n{"type":"event"}\n${event}\n`;
    const url = `${ingest.url}/api/${ingest.projectId}/envelope/?sentry_key=${ingest.publicKey}`;
    expect((await fetch(url, { method: "POST", body })).status).toBe(200);
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
  const mailsFor = (issueId: number): Mail[] =>
    smtp.mails.filter((m) => m.raw.includes(`/issues/${issueId}/`));
  const recipients = (issueId: number) =>
    mailsFor(issueId)
      .flatMap((m) => m.to)
      .sort();
  const rule = (environment: string, actions: Record<string, unknown>[]) => ({
    name: `to members ${environment}`,
    actionMatch: "all",
    frequency: 30,
    environment,
    conditions: [{ id: FIRST_SEEN }],
    actions,
  });
  const post = (body: Record<string, unknown>) =>
    api(ingest, "/api/0/projects/sluice/default/rules/", {
      method: "POST",
      body: JSON.stringify(body),
    });
  const createRule = async (body: Record<string, unknown>) => {
    const response = await post(body);
    expect(response.status).toBe(200);
    return (await response.json()) as Json;
  };
  /** Lets both pollers and both workers run a while, to see nothing more arrives. */
  const settle = () => new Promise((r) => setTimeout(r, 3_000));

  it("refuses, by field, a member or team the project's organization does not have", async () => {
    const refused = async (target: Record<string, unknown>, text: RegExp) => {
      const response = await post(rule("x", [{ id: EMAIL, ...target }]));
      expect(response.status).toBe(400);
      const body = (await response.json()) as Json;
      expect(body.detail).toBeTypeOf("string");
      expect(body.actions?.[0]).toMatch(text);
    };
    // dave is a member of another organization only: never a target here.
    await refused(
      { targetType: "Member", targetIdentifier: users.dave },
      /not a member of the organization/,
    );
    await refused(
      { targetType: "Member", targetIdentifier: 987654321 },
      /not a member of the organization/,
    );
    // carol is a member, but her team has no access to the project.
    await refused(
      { targetType: "Member", targetIdentifier: users.carol },
      /not part of the project/,
    );
    await refused({ targetType: "Team", targetIdentifier: otherTeam }, /team is not part/);
    await refused({ targetType: "Team", targetIdentifier: frontendTeam }, /team is not part/);
    await refused({ targetType: "Team" }, /You need to specify a Team or Member/);
    const saved = await createRule(
      rule("saved", [{ id: EMAIL, targetType: "Member", targetIdentifier: String(users.alice) }]),
    );
    expect(saved.actions[0]).toMatchObject({
      targetType: "Member",
      targetIdentifier: String(users.alice),
      name: "Send a notification to Member",
    });
  });

  it("sends exactly one email to the member a rule names, with the issue's facts and link", async () => {
    await createRule(
      rule("member", [{ id: EMAIL, targetType: "Member", targetIdentifier: users.alice }]),
    );
    const eventId = await send(`member ${run}`, {
      environment: "member",
      release: "api@7",
      transaction: "handlers.checkout",
    });
    const issue = await issueOf(eventId);
    await waitFor(async () => mailsFor(issue).length >= 1, 20_000, "the email");
    await settle();
    expect(mailsFor(issue)).toHaveLength(1);
    const [mail] = mailsFor(issue);
    expect(mail?.to).toEqual([address("alice")]);
    const raw = (mail?.raw ?? "").replace(/=\r?\n/g, "");
    expect(raw).toContain(`/organizations/sluice/issues/${issue}/`);
    expect(raw).toContain(`member ${run}`);
    expect(raw).toContain("Level: error");
    expect(raw).toContain("Culprit: handlers.checkout");
    expect(raw).toContain("Release: api@7");
    expect(raw).toContain("Environment: member");
    expect(raw).toContain("Events: 1");
    const key = /Idempotency-Key: ([0-9a-f-]{36})/.exec(raw)?.[1];
    expect(raw).toContain(`Message-ID: <${key}@sluice>`);
    const { rows } = await ingest.sql.query(
      `SELECT d.target, d.status FROM alert_deliveries d JOIN alert_firings f ON f.id = d.firing_id
        WHERE f.issue_id = $1`,
      [issue],
    );
    expect(rows).toEqual([{ target: `user:${users.alice}`, status: "delivered" }]);
  });

  it("sends one email to each member of a team with access, none to others, one to a member named twice", async () => {
    await createRule(
      rule("team", [
        { id: EMAIL, targetType: "Team", targetIdentifier: backendTeam },
        { id: EMAIL, targetType: "Member", targetIdentifier: users.alice },
      ]),
    );
    const issue = await issueOf(await send(`team ${run}`, { environment: "team" }));
    await waitFor(async () => mailsFor(issue).length >= 3, 20_000, "the team's emails");
    await settle();
    expect(recipients(issue)).toEqual([address("alice"), address("bob"), address("erin")].sort());
    for (const mail of mailsFor(issue)) expect(mail.to).toHaveLength(1);
    const keys = mailsFor(issue).map((m) => /Idempotency-Key: ([0-9a-f-]{36})/.exec(m.raw)?.[1]);
    expect(new Set(keys).size).toBe(3);
  });

  it("sends IssueOwners emails to their fallthrough: all members who can see the project, or no one", async () => {
    await createRule(
      rule("owners", [{ id: EMAIL, targetType: "IssueOwners", fallthroughType: "AllMembers" }]),
    );
    await createRule(
      rule("no-one", [{ id: EMAIL, targetType: "IssueOwners", fallthroughType: "NoOne" }]),
    );
    const issue = await issueOf(await send(`owners ${run}`, { environment: "owners" }));
    const none = await issueOf(await send(`no one ${run}`, { environment: "no-one" }));
    await waitFor(async () => mailsFor(issue).length >= 4, 20_000, "the fallthrough emails");
    await settle();
    // mona is a manager (every project); carol's team has no access; dave is elsewhere.
    expect(recipients(issue)).toEqual(
      [address("alice"), address("bob"), address("erin"), address("mona")].sort(),
    );
    expect(mailsFor(none)).toHaveLength(0);
  });

  it("sends nothing to a member removed after the rule was written, nor after it fired", async () => {
    const { orm } = ingest.services.db;
    const org = await ensureOrganization(orm, "sluice", "sluice");
    const remove = async (name: string) => {
      const membership = await findMembership(orm, org.id, users[name] as number);
      const member = await findMember(orm, org.id, membership?.id as number);
      if (!member) throw new Error(`${name} is not a member`);
      await removeMember(ingest.services, org, member, null);
    };
    // Removed after the rule was written, before it fires.
    await createRule(
      rule("removed", [
        { id: EMAIL, targetType: "Member", targetIdentifier: users.erin },
        { id: EMAIL, targetType: "Member", targetIdentifier: users.bob },
      ]),
    );
    await remove("erin");
    const issue = await issueOf(await send(`removed ${run}`, { environment: "removed" }));
    await waitFor(async () => mailsFor(issue).length >= 1, 20_000, "bob's email");
    await settle();
    expect(recipients(issue)).toEqual([address("bob")]);

    // Removed after the rule fired and before its emails were sent: the
    // alerts role is stopped, the worker records the firing, bob is removed,
    // then a node of role alerts sends what is pending.
    await createRule(
      rule("late", [{ id: EMAIL, targetType: "Team", targetIdentifier: backendTeam }]),
    );
    for (const w of workers) await w.stop();
    const shared = { databaseUrl: database.url, queuePrefix: prefix };
    workers = [await startTestSluice({ ...shared, roles: "worker", env: env() })];
    const late = await issueOf(await send(`late ${run}`, { environment: "late" }));
    const pending = async () =>
      (
        await ingest.sql.query(
          `SELECT d.target, d.status FROM alert_deliveries d JOIN alert_firings f ON f.id = d.firing_id
            WHERE f.issue_id = $1 ORDER BY d.target`,
          [late],
        )
      ).rows;
    expect(await pending()).toEqual(
      [`user:${users.alice}`, `user:${users.bob}`]
        .sort()
        .map((target) => ({ target, status: "pending" })),
    );
    await remove("bob");
    workers.push(await startTestSluice({ ...shared, roles: "alerts", env: env() }));
    await waitFor(async () => mailsFor(late).length >= 1, 20_000, "alice's email");
    await waitFor(
      async () => (await pending()).every((d: { status: string }) => d.status !== "pending"),
      20_000,
      "every delivery ended",
    );
    await settle();
    expect(recipients(late)).toEqual([address("alice")]);
    expect(await pending()).toEqual(
      [
        { target: `user:${users.alice}`, status: "delivered" },
        { target: `user:${users.bob}`, status: "skipped" },
      ].sort((a, b) => a.target.localeCompare(b.target)),
    );
    // A skipped recipient is not a failure of the rule.
    const rules = (await (
      await api(ingest, "/api/0/projects/sluice/default/rules/")
    ).json()) as Json;
    const lateRule = rules.find((r: { name: string }) => r.name === "to members late");
    expect(lateRule.deliveries).toMatchObject({ sent: 1, failed: 0, pending: 0 });
    expect(lateRule.lastError).toBeNull();
  });
});
