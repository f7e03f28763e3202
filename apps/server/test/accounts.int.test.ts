import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { createTestUser, organizationToken, signInForm, userToken } from "./accounts-harness.ts";
import { api, startTestSluice, type TestSluice } from "./harness.ts";

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe("accounts: sessions, sign-in and tokens", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ redis: false, env: { SLUICE_SIGN_IN_MAX_FAILURES: "3" } });
    await createTestUser(t, "Owner@Example.com", "sluice", "owner");
  });
  afterAll(() => t?.stop());

  it("signs in with the form, reads the API with the cookie, and signs out", async () => {
    const session = await signInForm(t, "owner@example.com");
    const me = await fetch(`${t.url}/api/0/users/me/`, { headers: { cookie: session.cookie } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { email: string }).email).toBe("owner@example.com");
    const orgs = await fetch(`${t.url}/api/0/organizations/`, {
      headers: { cookie: session.cookie },
    });
    expect(((await orgs.json()) as { slug: string }[]).map((o) => o.slug)).toEqual(["sluice"]);

    const out = await fetch(`${t.url}/auth/logout/`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: session.cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf: session.csrf }),
    });
    expect(out.status).toBe(303);
    const after = await fetch(`${t.url}/api/0/users/me/`, { headers: { cookie: session.cookie } });
    expect(after.status).toBe(401);
  });

  it("sets the cookie HttpOnly and SameSite=Lax", async () => {
    const response = await fetch(`${t.url}/auth/login/`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: "owner@example.com", password: "correct horse battery" }),
    });
    const cookie = response.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it("refuses a cookie-authenticated change without the CSRF token, and one from another site", async () => {
    const session = await signInForm(t, "owner@example.com");
    const body = JSON.stringify({ email: "x@example.com", orgRole: "member" });
    const without = await fetch(`${t.url}/api/0/organizations/sluice/members/`, {
      method: "POST",
      headers: { cookie: session.cookie, "content-type": "application/json" },
      body,
    });
    expect(without.status).toBe(403);
    const foreign = await fetch(`${t.url}/api/0/organizations/sluice/members/`, {
      method: "POST",
      headers: {
        cookie: session.cookie,
        "content-type": "application/json",
        "x-csrftoken": session.csrf,
        origin: "https://evil.example",
      },
      body,
    });
    expect(foreign.status).toBe(403);
    const ok = await fetch(`${t.url}/api/0/organizations/sluice/members/`, {
      method: "POST",
      headers: {
        cookie: session.cookie,
        "content-type": "application/json",
        "x-csrftoken": session.csrf,
      },
      body,
    });
    expect(ok.status).toBe(201);
  });

  it("bounds failed sign-ins per account with a clear message", async () => {
    await createTestUser(t, "victim@example.com");
    const attempt = (password: string) =>
      fetch(`${t.url}/auth/login/`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email: "victim@example.com", password }),
      });
    for (let i = 0; i < 3; i++) expect((await attempt("wrong password")).status).toBe(401);
    const limited = await attempt("correct horse battery");
    expect(limited.status).toBe(429);
    expect(await limited.text()).toMatch(/Too many failed sign-ins/);
  });

  it("gives the same answer for an unknown address as for a wrong password", async () => {
    const response = await fetch(`${t.url}/auth/login/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: "nobody@example.com", password: "whatever123" }),
    });
    expect(response.status).toBe(401);
    expect(await response.text()).toMatch(/The email or password is not correct/);
  });

  it("never redirects off the site after sign-in", async () => {
    await createTestUser(t, "next@example.com");
    for (const next of ["//evil.example/", "https://evil.example/", "/\\evil.example"]) {
      const response = await fetch(`${t.url}/auth/login/?next=${encodeURIComponent(next)}`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email: "next@example.com", password: "correct horse battery" }),
      });
      expect(response.headers.get("location")).toBe("/organizations/sluice/issues/");
    }
  });

  it("revokes a user token on every request at once", async () => {
    const session = await signInForm(t, "owner@example.com");
    const created = await fetch(`${t.url}/api/0/api-tokens/`, {
      method: "POST",
      headers: {
        cookie: session.cookie,
        "content-type": "application/json",
        "x-csrftoken": session.csrf,
      },
      body: JSON.stringify({ name: "laptop", scopes: ["org:read", "event:read"] }),
    });
    expect(created.status).toBe(201);
    const { id, token } = (await created.json()) as { id: string; token: string };
    expect(token).toMatch(/^sntryu_[0-9a-f]{64}$/);
    expect((await fetch(`${t.url}/api/0/organizations/`, { headers: bearer(token) })).status).toBe(
      200,
    );
    const revoked = await fetch(`${t.url}/api/0/api-tokens/`, {
      method: "DELETE",
      headers: {
        cookie: session.cookie,
        "content-type": "application/json",
        "x-csrftoken": session.csrf,
      },
      body: JSON.stringify({ tokenId: id }),
    });
    expect(revoked.status).toBe(204);
    expect((await fetch(`${t.url}/api/0/organizations/`, { headers: bearer(token) })).status).toBe(
      401,
    );
  });

  it("caps a user token by its scopes", async () => {
    const token = await userToken(t, "owner@example.com", ["org:read"]);
    const projects = await fetch(`${t.url}/api/0/projects/sluice/default/issues/`, {
      headers: bearer(token),
    });
    expect(projects.status).toBe(403);
    const org = await fetch(`${t.url}/api/0/organizations/sluice/`, { headers: bearer(token) });
    expect(org.status).toBe(200);
  });

  it("keeps instance-admin tokens of earlier releases working", async () => {
    const response = await api(t, "/api/0/organizations/sluice/projects/");
    expect(response.status).toBe(200);
  });
});

/**
 * One token of organization A against each route family of organization B:
 * never 2xx, and the `/organizations/{org}/` and `/projects/{org}/…` forms agree.
 */
describe("tenancy: a token of one organization never reaches another", () => {
  let t: TestSluice;
  let tokenA: string;
  let userTokenA: string;
  let issueB: string;
  let issueA: string;
  beforeAll(async () => {
    t = await startTestSluice();
    await createProjectWithKey(t.services, "alpha", "web");
    const b = await createProjectWithKey(t.services, "beta", "web");
    tokenA = await organizationToken(t, "alpha");
    await createTestUser(t, "alice@alpha.example", "alpha", "owner");
    userTokenA = await userToken(t, "alice@alpha.example", [
      "org:read",
      "project:read",
      "project:releases",
      "event:read",
      "event:write",
      "member:read",
    ]);
    // An issue in each organization, through real ingest.
    const a = await createProjectWithKey(t.services, "alpha", "web");
    for (const [dsn, tag] of [
      [b.dsn, "B"],
      [a.dsn, "A"],
    ] as const) {
      const url = new URL(dsn);
      const send = await fetch(`${t.url}/api${url.pathname}/store/?sentry_key=${url.username}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ message: `hello ${tag}`, level: "error" }),
      });
      expect(send.status).toBe(200);
    }
    const find = async (org: string) => {
      for (let i = 0; i < 100; i++) {
        const { rows } = await t.sql.query(
          "SELECT i.id FROM issues i JOIN projects p ON p.id = i.project_id JOIN organizations o ON o.id = p.organization_id WHERE o.slug = $1",
          [org],
        );
        if (rows[0]) return String(rows[0].id);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("no issue");
    };
    issueB = await find("beta");
    issueA = await find("alpha");
    await api(t, "/api/0/organizations/beta/releases/", {
      method: "POST",
      body: JSON.stringify({ version: "b@1", projects: ["web"] }),
    });
  });
  afterAll(() => t?.stop());

  const familiesOfB = () => [
    ["organizations", "GET", "/api/0/organizations/beta/"],
    ["projects", "GET", "/api/0/organizations/beta/projects/"],
    ["projects", "GET", "/api/0/projects/beta/web/"],
    ["keys", "GET", "/api/0/projects/beta/web/keys/"],
    ["issues", "GET", "/api/0/projects/beta/web/issues/"],
    ["issues", "GET", "/api/0/organizations/beta/issues/?query=environment:production"],
    ["issues", "GET", `/api/0/issues/${issueB}/`],
    ["issues", "GET", `/api/0/organizations/beta/issues/${issueB}/`],
    ["issues", "PUT", `/api/0/issues/${issueB}/`],
    ["issues", "PUT", `/api/0/organizations/beta/issues/${issueB}/`],
    ["events", "GET", `/api/0/issues/${issueB}/events/`],
    ["events", "GET", `/api/0/organizations/beta/issues/${issueB}/events/latest/`],
    ["releases", "GET", "/api/0/organizations/beta/releases/"],
    ["releases", "GET", "/api/0/projects/beta/web/releases/"],
    ["releases", "POST", "/api/0/organizations/beta/releases/"],
    ["files", "GET", "/api/0/organizations/beta/releases/b@1/files/"],
    ["files", "GET", "/api/0/projects/beta/web/releases/b@1/files/"],
    ["uploads", "GET", "/api/0/organizations/beta/chunk-upload/"],
    ["uploads", "POST", "/api/0/organizations/beta/artifactbundle/assemble/"],
    ["members", "GET", "/api/0/organizations/beta/members/"],
    ["members", "POST", "/api/0/organizations/beta/members/"],
    ["tokens", "GET", "/api/0/organizations/beta/org-auth-tokens/"],
    ["audit log", "GET", "/api/0/organizations/beta/audit-logs/"],
    ["projects", "PUT", "/api/0/projects/beta/web/"],
    ["issues", "PUT", `/api/0/projects/beta/web/issues/?id=${issueB}`],
    ["issues", "PUT", `/api/0/organizations/beta/issues/?id=${issueB}`],
    ["hashes", "GET", `/api/0/issues/${issueB}/hashes/`],
    ["hashes", "GET", `/api/0/organizations/beta/issues/${issueB}/hashes/`],
  ];

  for (const [kind, tokenOf] of [
    ["organization token", () => tokenA],
    ["user token", () => userTokenA],
  ] as const) {
    it(`an ${kind} of alpha gets 403/404 on every route family of beta`, async () => {
      const answers: string[] = [];
      for (const [family, method, path] of familiesOfB()) {
        const response = await fetch(`${t.url}${path}`, {
          method,
          headers: { ...bearer(tokenOf()), "content-type": "application/json" },
          body:
            method === "GET"
              ? undefined
              : JSON.stringify({
                  status: "resolved",
                  version: "x",
                  checksum: "0".repeat(40),
                  chunks: [],
                  projects: ["web"],
                }),
        });
        answers.push(`${family} ${method} ${path} ${response.status}`);
        // 204: a bulk update that found no issue of its own organization to change.
        expect([403, 404, 204], `${family} ${method} ${path}`).toContain(response.status);
      }
      expect(answers).toHaveLength(familiesOfB().length);
      const { rows } = await t.sql.query("SELECT status FROM issues WHERE id = $1", [issueB]);
      expect(rows[0].status).toBe("unresolved");
    });
  }

  it("the same token reaches its own organization", async () => {
    expect(
      (await fetch(`${t.url}/api/0/organizations/alpha/`, { headers: bearer(tokenA) })).status,
    ).toBe(200);
    expect(
      (await fetch(`${t.url}/api/0/organizations/alpha/chunk-upload/`, { headers: bearer(tokenA) }))
        .status,
    ).toBe(200);
    const issue = await fetch(`${t.url}/api/0/issues/${issueA}/`, { headers: bearer(userTokenA) });
    expect(issue.status).toBe(200);
    const list = await fetch(`${t.url}/api/0/organizations/`, { headers: bearer(tokenA) });
    expect(((await list.json()) as { slug: string }[]).map((o) => o.slug)).toEqual(["alpha"]);
  });

  it("an organization token reads no events, even of its own organization", async () => {
    const events = await fetch(`${t.url}/api/0/issues/${issueA}/events/`, {
      headers: bearer(tokenA),
    });
    expect(events.status).toBe(403);
  });
});
