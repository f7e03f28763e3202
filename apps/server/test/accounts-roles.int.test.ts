import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_SCOPES } from "../src/accounts/roles.ts";
import { createTestUser, signInForm, userToken } from "./accounts-harness.ts";
import { startTestSluice, type TestSluice } from "./harness.ts";

type Json = Record<string, unknown>;

describe("organization roles, teams and the audit log", () => {
  let t: TestSluice;
  const tokens: Record<string, string> = {};
  const as = (who: string, path: string, init: RequestInit = {}) =>
    fetch(`${t.url}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${tokens[who]}`, "content-type": "application/json" },
    });
  const memberId = async (email: string) => {
    const { rows } = await t.sql.query("SELECT id FROM organization_members WHERE email = $1", [
      email,
    ]);
    return String(rows[0].id);
  };

  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    for (const role of ["owner", "manager", "admin", "member"] as const) {
      await createTestUser(t, `${role}@example.com`, "sluice", role);
      tokens[role] = await userToken(t, `${role}@example.com`, [...ALL_SCOPES]);
    }
  });
  afterAll(() => t?.stop());

  it("lets managers and owners invite, and nobody grant a role above their own", async () => {
    const invite = (who: string, email: string, orgRole: string) =>
      as(who, "/api/0/organizations/sluice/members/", {
        method: "POST",
        body: JSON.stringify({ email, orgRole }),
      });
    expect((await invite("member", "a@example.com", "member")).status).toBe(403);
    expect((await invite("admin", "a@example.com", "member")).status).toBe(403);
    const byManager = await invite("manager", "a@example.com", "admin");
    expect(byManager.status).toBe(201);
    const created = (await byManager.json()) as Json;
    expect(created).toMatchObject({ email: "a@example.com", orgRole: "admin", pending: true });
    expect(String(created.inviteLink)).toMatch(/\/accept\/[A-Za-z0-9_-]+\/$/);
    expect((await invite("manager", "b@example.com", "owner")).status).toBe(400);
    expect((await invite("owner", "a@example.com", "member")).status).toBe(409);
    expect((await invite("owner", "b@example.com", "owner")).status).toBe(201);
  });

  it("changes roles with member:admin, and keeps one owner at least", async () => {
    const id = await memberId("member@example.com");
    const put = (who: string, target: string, orgRole: string) =>
      as(who, `/api/0/organizations/sluice/members/${target}/`, {
        method: "PUT",
        body: JSON.stringify({ orgRole }),
      });
    expect((await put("admin", id, "admin")).status).toBe(403);
    const promoted = await put("manager", id, "admin");
    expect(promoted.status).toBe(200);
    expect(((await promoted.json()) as Json).orgRole).toBe("admin");
    expect((await put("manager", await memberId("owner@example.com"), "member")).status).toBe(400);
    // The only owner with an account cannot step down or be removed.
    expect((await put("owner", await memberId("owner@example.com"), "manager")).status).toBe(400);
    const remove = await as(
      "owner",
      `/api/0/organizations/sluice/members/${await memberId("owner@example.com")}/`,
      {
        method: "DELETE",
      },
    );
    expect(remove.status).toBe(400);
    expect(await put("manager", id, "member")).toHaveProperty("status", 200);
  });

  it("lets a member leave, and nobody else remove members without member:admin", async () => {
    await createTestUser(t, "leaver@example.com", "sluice", "member");
    const leaver = await userToken(t, "leaver@example.com", [...ALL_SCOPES]);
    const id = await memberId("leaver@example.com");
    expect(
      (await as("admin", `/api/0/organizations/sluice/members/${id}/`, { method: "DELETE" }))
        .status,
    ).toBe(403);
    const self = await fetch(`${t.url}/api/0/organizations/sluice/members/me/`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${leaver}` },
    });
    expect(self.status).toBe(204);
    const after = await fetch(`${t.url}/api/0/organizations/sluice/`, {
      headers: { Authorization: `Bearer ${leaver}` },
    });
    expect(after.status).toBe(404);
  });

  it("without Open Membership, a member sees only its teams' projects", async () => {
    const closed = await as("owner", "/api/0/organizations/sluice/", {
      method: "PUT",
      body: JSON.stringify({ openMembership: false }),
    });
    expect(((await closed.json()) as Json).openMembership).toBe(false);
    const project = () => as("member", "/api/0/projects/sluice/default/");
    const list = async () =>
      ((await (await as("member", "/api/0/organizations/sluice/projects/")).json()) as Json[]).map(
        (p) => p.slug,
      );
    expect((await project()).status).toBe(404);
    expect((await as("member", "/api/0/projects/sluice/default/issues/")).status).toBe(404);
    expect(await list()).toEqual([]);
    // Admins are not global either; managers and owners are.
    expect((await as("admin", "/api/0/projects/sluice/default/")).status).toBe(404);
    expect((await as("manager", "/api/0/projects/sluice/default/")).status).toBe(200);
    // A member cannot join a team by itself while membership is closed.
    expect(
      (
        await as("owner", "/api/0/organizations/sluice/teams/", {
          method: "POST",
          body: JSON.stringify({ slug: "web" }),
        })
      ).status,
    ).toBe(201);
    expect(
      (await as("member", "/api/0/organizations/sluice/members/me/teams/web/", { method: "POST" }))
        .status,
    ).toBe(403);
    expect(
      (
        await as(
          "owner",
          `/api/0/organizations/sluice/members/${await memberId("member@example.com")}/teams/web/`,
          { method: "POST" },
        )
      ).status,
    ).toBe(201);
    expect((await project()).status).toBe(404);
    expect(
      (await as("owner", "/api/0/projects/sluice/default/teams/web/", { method: "POST" })).status,
    ).toBe(201);
    expect((await project()).status).toBe(200);
    expect(await list()).toEqual(["default"]);
    await as("owner", "/api/0/organizations/sluice/", {
      method: "PUT",
      body: JSON.stringify({ openMembership: true }),
    });
    expect((await as("admin", "/api/0/projects/sluice/default/")).status).toBe(200);
  });

  it("records sign-ins, membership, role and token changes in the audit log, for managers and owners", async () => {
    const session = await signInForm(t, "owner@example.com");
    await fetch(`${t.url}/api/0/organizations/sluice/org-auth-tokens/`, {
      method: "POST",
      headers: {
        cookie: session.cookie,
        "x-csrftoken": session.csrf,
        "content-type": "application/json",
      },
      body: JSON.stringify({ name: "ci" }),
    });
    const log = await as("owner", "/api/0/organizations/sluice/audit-logs/");
    expect(log.status).toBe(200);
    const { rows } = (await log.json()) as { rows: { event: string; actor: { name: string } }[] };
    const events = new Set(rows.map((r) => r.event));
    for (const event of [
      "member.add",
      "member.invite",
      "member.edit",
      "member.remove",
      "org.edit",
      "orgauthtoken.create",
      "user.sign_in",
    ])
      expect(events, event).toContain(event);
    expect(rows.find((r) => r.event === "orgauthtoken.create")?.actor.name).toBe(
      "owner@example.com",
    );
    expect((await as("member", "/api/0/organizations/sluice/audit-logs/")).status).toBe(403);
    expect((await as("admin", "/api/0/organizations/sluice/audit-logs/")).status).toBe(403);
  });

  it("makes organization tokens in Sentry's sntrys_ format, readable by sentry-cli", async () => {
    const created = await as("owner", "/api/0/organizations/sluice/org-auth-tokens/", {
      method: "POST",
      body: JSON.stringify({ name: "deploy" }),
    });
    expect(created.status).toBe(201);
    const { token, id } = (await created.json()) as { token: string; id: string };
    const [, payload] = /^sntrys_([A-Za-z0-9+/=]+)_[A-Za-z0-9+/]+$/.exec(token) ?? [];
    expect(JSON.parse(Buffer.from(payload as string, "base64").toString())).toMatchObject({
      org: "sluice",
      url: t.url,
    });
    const upload = await fetch(`${t.url}/api/0/organizations/sluice/chunk-upload/`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(upload.status).toBe(200);
    expect(
      (
        await as("member", `/api/0/organizations/sluice/org-auth-tokens/${id}/`, {
          method: "DELETE",
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await as("owner", `/api/0/organizations/sluice/org-auth-tokens/${id}/`, {
          method: "DELETE",
        })
      ).status,
    ).toBe(204);
    const revoked = await fetch(`${t.url}/api/0/organizations/sluice/chunk-upload/`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(revoked.status).toBe(401);
  });
});

describe("sessions across nodes", () => {
  let one: TestSluice;
  let two: TestSluice;
  beforeAll(async () => {
    one = await startTestSluice({ roles: "api" });
    two = await startTestSluice({ roles: "api", databaseUrl: one.config.databaseUrl as string });
    await createTestUser(one, "roamer@example.com");
  });
  afterAll(async () => {
    await two?.stop();
    await one?.stop();
  });

  it("serves a session made on one node on another, and ends it on both within seconds", async () => {
    const session = await signInForm(one, "roamer@example.com");
    const me = (node: TestSluice) =>
      fetch(`${node.url}/api/0/users/me/`, { headers: { cookie: session.cookie } });
    expect((await me(two)).status).toBe(200);
    await fetch(`${one.url}/auth/logout/`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: session.cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: session.csrf }),
    });
    expect((await me(one)).status).toBe(401);
    const started = Date.now();
    while ((await me(two)).status === 200) {
      expect(Date.now() - started).toBeLessThan(5_000);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
