import {
  addProjectTeam,
  addTeamMember,
  ensureTeam,
  findMemberByEmail,
  findOrganization,
  recordSpike,
  setOpenMembership,
  setSpikeProtectionEnabled,
} from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { GROUPING_RULES_TTL_MS } from "../src/worker/grouping-rules-cache.ts";
import { createTestUser, signInForm, type TestSession } from "./accounts-harness.ts";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

/**
 * The web pages over HTTP against a real server: status codes, redirects,
 * errors as pages, and markup a screen reader (and the browser test) finds
 * by role and accessible name: labels tied to their controls, links by
 * their text, buttons by their text.
 */

/** The text of `<label for=id>` must name a control with that id. */
function labelledControl(html: string, label: string): string {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`<label for="([^"]+)">${escaped}</label>`).exec(html);
  if (!match) throw new Error(`no label "${label}"`);
  const control = new RegExp(`<(input|select|textarea)[^>]*\\bid="${match[1]}"[^>]*>`).exec(html);
  if (!control) throw new Error(`label "${label}" names no control`);
  return control[0];
}

/** Hrefs of links whose text is exactly `text`. */
function links(html: string, text: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<a\b([^>]*)>([^<]*)<\/a>/g)) {
    const href = /href="([^"]*)"/.exec(m[1] as string)?.[1];
    if ((m[2] as string).trim() === text && href) out.push(href.replaceAll("&amp;", "&"));
  }
  return out;
}

/** Texts of the submit buttons. */
function buttons(html: string): string[] {
  return [...html.matchAll(/<button\b[^>]*>([^<]*)<\/button>/g)].map((m) =>
    (m[1] as string).trim(),
  );
}

/** The signed-in owner's session, which `page` sends unless told `as`. */
let owner: TestSession;

const page = (
  t: TestSluice,
  path: string,
  init: RequestInit = {},
  as: TestSession | null = owner,
) =>
  fetch(`${t.url}${path}`, {
    redirect: "manual",
    ...init,
    headers: { ...(as ? { cookie: as.cookie } : {}), ...(init.headers ?? {}) },
  });

const csrfOf = (html: string) => /name="csrf" value="([^"]*)"/.exec(html)?.[1] ?? "";

describe("the web pages", () => {
  let t: TestSluice;
  let issueId: string;
  const eventIds: string[] = [];
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    await createTestUser(t, "owner@example.com", "sluice", "owner");
    owner = await signInForm(t, "owner@example.com");
    const url = `${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`;
    for (let i = 0; i < 3; i++) {
      const eventId = crypto.randomUUID().replaceAll("-", "");
      eventIds.push(eventId);
      const event = {
        event_id: eventId,
        platform: "javascript",
        release: "web@1.0.0",
        environment: "production",
        level: "error",
        user: { email: `user${i}@example.com` },
        request: {
          method: "GET",
          url: "https://shop.example/cart",
          headers: { "User-Agent": "test" },
        },
        contexts: { browser: { name: "Chrome", version: "140" }, os: { name: "Linux" } },
        sdk: { name: "sentry.javascript.browser", version: "10.0.0" },
        tags: { shard: `s${i % 2}` },
        breadcrumbs: [
          { timestamp: 1_700_000_000, category: "ui.click", message: "button#checkout" },
        ],
        exception: {
          values: [
            {
              type: "TypeError",
              value: "cart.items is undefined",
              stacktrace: {
                frames: [
                  {
                    function: "dispatch",
                    filename: "node_modules/react-dom.js",
                    lineno: 10,
                    in_app: false,
                  },
                  {
                    function: "listener",
                    filename: "node_modules/react-dom.js",
                    lineno: 20,
                    in_app: false,
                  },
                  {
                    function: "checkout",
                    filename: "src/cart.js",
                    abs_path: "https://shop.example/src/cart.js",
                    lineno: 42,
                    colno: 7,
                    in_app: true,
                    pre_context: ["function checkout(cart) {"],
                    context_line: "  return cart.items.length;",
                    post_context: ["}"],
                  },
                ],
              },
            },
          ],
        },
      };
      expect((await fetch(url, { method: "POST", body: JSON.stringify(event) })).status).toBe(200);
    }
    await fetch(url, {
      method: "POST",
      body: JSON.stringify({ message: "a warning <b>not bold</b>", level: "warning" }),
    });
    await waitFor(async () => (await countRows(t.sql, "events", "processed_at IS NOT NULL")) === 4);
    const issues = (await (await api(t, "/api/0/projects/sluice/default/issues/")).json()) as {
      id: string;
      title: string;
    }[];
    issueId = issues.find((i) => i.title.startsWith("TypeError"))?.id as string;
  });
  afterAll(async () => t?.stop());

  it("sends a visitor without a session to sign in, and back after", async () => {
    for (const path of [
      "/",
      "/organizations/sluice/issues/?query=is:resolved",
      "/settings/account/",
    ]) {
      const res = await page(t, path, {}, null);
      expect(res.status, path).toBe(302);
      expect(res.headers.get("location"), path).toBe(
        `/auth/login/?next=${encodeURIComponent(path)}`,
      );
    }
    const res = await fetch(
      `${t.url}/auth/login/?next=${encodeURIComponent("/organizations/sluice/releases/")}`,
      {
        method: "POST",
        redirect: "manual",
        body: new URLSearchParams({
          email: "owner@example.com",
          password: "correct horse battery",
        }),
      },
    );
    expect(res.headers.get("location")).toBe("/organizations/sluice/releases/");
  });

  it("shows a member only the projects of their teams, and 404 pages for the rest", async () => {
    const { orm } = t.services.db;
    const org = await findOrganization(orm, "sluice");
    if (!org) throw new Error("no org");
    const secret = await t.sql.query(
      "INSERT INTO projects (organization_id, slug, name) VALUES ($1, 'secret', 'secret') RETURNING id",
      [org.id],
    );
    const issue = await t.sql.query(
      `INSERT INTO issues (project_id, short_id, title, first_seen, last_seen) VALUES ($1, 1, 'SecretError', now(), now()) RETURNING id`,
      [secret.rows[0].id],
    );
    await createTestUser(t, "member@example.com", "sluice", "member");
    await setOpenMembership(orm, org.id, false);
    const team = await ensureTeam(orm, org.id, "web", "web");
    await addProjectTeam(orm, t.projectId, team.id);
    const member = await findMemberByEmail(orm, org.id, "member@example.com");
    await addTeamMember(orm, team.id, member?.id as number);
    const session = await signInForm(t, "member@example.com");
    const list = await (await page(t, "/organizations/sluice/issues/?query=", {}, session)).text();
    expect(list).toContain("TypeError: cart.items is undefined");
    expect(list).not.toContain("SecretError");
    expect(
      await (await page(t, "/organizations/sluice/issues/?query=", {}, owner)).text(),
    ).toContain("SecretError");
    const hidden = await page(t, `/organizations/sluice/issues/${issue.rows[0].id}/`, {}, session);
    expect(hidden.status).toBe(404);
    expect(await hidden.text()).toContain("Page not found");
    expect(
      (await page(t, `/organizations/sluice/issues/?project=${secret.rows[0].id}`, {}, session))
        .status,
    ).toBe(404);
    expect((await page(t, "/settings/sluice/projects/secret/", {}, session)).status).toBe(404);
    // A member may not create projects: no form, and the POST is a 403 page.
    const projects = await (await page(t, "/settings/sluice/projects/", {}, session)).text();
    expect(projects).not.toContain("Create a project");
    const create = await page(
      t,
      "/settings/sluice/projects/",
      {
        method: "POST",
        body: new URLSearchParams({ csrf: session.csrf, slug: "nope" }),
      },
      session,
    );
    expect(create.status).toBe(403);
    expect(create.headers.get("content-type")).toContain("text/html");
    await setOpenMembership(orm, org.id, true);
    await t.sql.query("DELETE FROM issues WHERE id = $1", [issue.rows[0].id]);
  });

  it("sends the root to the first organization's issues", async () => {
    const res = await page(t, "/");
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/organizations/sluice/issues/");
  });

  it("lists issues with a labelled search box, title links, counts and sparklines", async () => {
    const res = await page(t, "/organizations/sluice/issues/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await res.text();
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(labelledControl(html, "Search")).toContain('value="is:unresolved"');
    labelledControl(html, "Project");
    labelledControl(html, "Environment");
    labelledControl(html, "Sort by");
    expect(links(html, "TypeError: cart.items is undefined")).toEqual([
      `/organizations/sluice/issues/${issueId}/`,
    ]);
    // Escaped, never markup.
    expect(html).toContain("a warning &lt;b&gt;not bold&lt;/b&gt;");
    expect(html).toMatch(/aria-label="3 events in the last 24 hours"/);
    expect(buttons(html)).toEqual(
      expect.arrayContaining(["Resolve selected", "Ignore selected", "Sign out"]),
    );
    expect(html).toMatch(/<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"/);
  });

  it("searches with Sentry's syntax", async () => {
    const search = async (query: string) => {
      const html = await (
        await page(t, `/organizations/sluice/issues/?query=${encodeURIComponent(query)}`)
      ).text();
      return {
        html,
        titles: [...html.matchAll(/class="issue-title"[^>]*>([^<]*)</g)].map((m) => m[1]),
      };
    };
    expect((await search("level:warning")).titles).toEqual([
      "a warning &lt;b&gt;not bold&lt;/b&gt;",
    ]);
    expect((await search("!level:warning")).titles).toEqual(["TypeError: cart.items is undefined"]);
    expect((await search("release:web@1.0.0")).titles).toEqual([
      "TypeError: cart.items is undefined",
    ]);
    expect((await search("user.email:user1@example.com")).titles).toHaveLength(1);
    expect((await search("has:user cart")).titles).toHaveLength(1);
    expect((await search("is:resolved")).titles).toEqual([]);
    expect((await search("environment:production")).titles).toEqual([
      "TypeError: cart.items is undefined",
    ]);
    expect((await search("times_seen:>1")).html).toContain("Not applied");
    const bad = await page(
      t,
      `/organizations/sluice/issues/?query=${encodeURIComponent("level:loud")}`,
    );
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("level:loud is not a level");
  });

  it("pages with cursors and rejects a forged cursor with a page", async () => {
    const sorted = await page(t, "/organizations/sluice/issues/?sort=freq");
    expect(sorted.status).toBe(200);
    const bad = await page(t, "/organizations/sluice/issues/?cursor=n:zzz:1");
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("text/html");
  });

  it("walks 60 issues forward and back with keyset cursors, none lost or repeated at equal times", async () => {
    const project = await t.sql.query(
      "INSERT INTO projects (organization_id, slug, name) SELECT organization_id, 'paging', 'paging' FROM projects WHERE id = $1 RETURNING id",
      [t.projectId],
    );
    const projectId = project.rows[0].id as string;
    // Ten issues share each last_seen (microseconds apart from none), so ties need the id.
    await t.sql.query(
      `INSERT INTO issues (project_id, short_id, title, first_seen, last_seen, times_seen)
       SELECT $1, n, 'Paging' || n, now(), timestamp '2026-01-01 00:00:00.123456' + (n / 10) * interval '1 second', n % 3
         FROM generate_series(1, 60) AS n`,
      [projectId],
    );
    for (const sort of ["date", "freq"]) {
      const seen: string[] = [];
      const pages: string[] = [];
      let path: string | undefined =
        `/organizations/sluice/issues/?project=${projectId}&sort=${sort}`;
      while (path) {
        pages.push(path);
        const html = await (await page(t, path)).text();
        seen.push(
          ...[...html.matchAll(/class="issue-title"[^>]*>([^<]*)</g)].map((m) => m[1] as string),
        );
        path = links(html, "Next page")[0];
      }
      expect(pages).toHaveLength(3);
      expect(new Set(seen).size).toBe(60);
      const last = await (await page(t, pages[2] as string)).text();
      const back = links(last, "Previous page")[0] as string;
      const second = await (await page(t, pages[1] as string)).text();
      const titles = (html: string) =>
        [...html.matchAll(/class="issue-title"[^>]*>([^<]*)</g)].map((m) => m[1]);
      expect(titles(await (await page(t, back)).text())).toEqual(titles(second));
    }
  });

  it("shows an issue: exception, in-app frames first and highlighted, system frames folded, event details", async () => {
    const res = await page(t, `/organizations/sluice/issues/${issueId}/`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(">TypeError</h3>");
    expect(html).toContain("cart.items is undefined");
    const inApp = html.indexOf('class="in-app"');
    const system = html.indexOf("2 system frames");
    expect(inApp).toBeGreaterThan(0);
    expect(system).toBeGreaterThan(inApp);
    expect(html).toContain('<span class="fn">checkout</span>');
    expect(html).toContain("src/cart.js:42:7");
    expect(html).toContain("  return cart.items.length;");
    for (const heading of ["Breadcrumbs", "Request", "User", "Contexts", "SDK", "Tags"]) {
      expect(html).toContain(`>${heading}</h2>`);
    }
    expect(html).toContain("button#checkout");
    expect(html).toContain("sentry.javascript.browser");
    expect(buttons(html)).toEqual(
      expect.arrayContaining(["Resolve", "Resolve in next release", "Ignore"]),
    );
    expect(buttons(html)).not.toContain("Unresolve");
    expect(links(html, "Raw JSON")).toHaveLength(1);
    expect(links(html, "Older")).toHaveLength(1);
    expect(html).toContain('aria-disabled="true">Newer');
  });

  it("walks the events: oldest, older, newer, latest, the list and raw JSON", async () => {
    const base = `/organizations/sluice/issues/${issueId}`;
    const oldest = await (await page(t, `${base}/events/oldest/`)).text();
    expect(oldest).toContain(eventIds[0]);
    expect(oldest).toContain('aria-disabled="true">Older');
    const newer = links(oldest, "Newer")[0] as string;
    expect(newer).toBe(`${base}/events/${eventIds[1]}/`);
    const middle = await (await page(t, newer)).text();
    expect(links(middle, "Older")).toEqual([`${base}/events/${eventIds[0]}/`]);
    expect(links(middle, "Newer")).toEqual([`${base}/events/${eventIds[2]}/`]);
    const list = await (await page(t, `${base}/events/`)).text();
    expect(links(list, eventIds[2] as string)).toHaveLength(1);
    const raw = await page(t, `${base}/events/${eventIds[1]}/json/`);
    expect(raw.headers.get("content-type")).toContain("application/json");
    expect(((await raw.json()) as { event_id: string }).event_id).toBe(eventIds[1]);
    expect((await page(t, `${base}/events/${"0".repeat(32)}/`)).status).toBe(404);
  });

  it("resolves and unresolves from the issue page, as the API then reports", async () => {
    const html = await (await page(t, `/organizations/sluice/issues/${issueId}/`)).text();
    const form = (status: string, csrf = csrfOf(html)) =>
      page(t, `/organizations/sluice/issues/${issueId}/status/`, {
        method: "POST",
        body: new URLSearchParams({ csrf, status }),
      });
    expect((await form("resolved", "wrong")).status).toBe(403);
    expect(
      (
        await page(
          t,
          `/organizations/sluice/issues/${issueId}/status/`,
          { method: "POST", body: new URLSearchParams({ status: "resolved" }) },
          null,
        )
      ).status,
    ).toBe(302);
    const resolved = await form("resolved");
    expect(resolved.status).toBe(303);
    expect(resolved.headers.get("location")).toBe(`/organizations/sluice/issues/${issueId}/`);
    const status = async () =>
      ((await (await api(t, `/api/0/issues/${issueId}/`)).json()) as { status: string }).status;
    expect(await status()).toBe("resolved");
    const after = await (await page(t, `/organizations/sluice/issues/${issueId}/`)).text();
    expect(buttons(after)).toContain("Unresolve");
    expect(buttons(after)).not.toContain("Resolve");
    await form("unresolved");
    expect(await status()).toBe("unresolved");
  });

  it("bulk-ignores selected issues", async () => {
    const html = await (await page(t, "/organizations/sluice/issues/")).text();
    const res = await page(t, "/organizations/sluice/issues/bulk/", {
      method: "POST",
      body: new URLSearchParams([
        ["csrf", csrfOf(html)],
        ["status", "ignored"],
        ["issue", issueId],
        ["next", "/organizations/sluice/issues/?query=is:ignored"],
      ]),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/organizations/sluice/issues/?query=is:ignored");
    const ignored = await (await page(t, "/organizations/sluice/issues/?query=is:ignored")).text();
    expect(links(ignored, "TypeError: cart.items is undefined")).toHaveLength(1);
    const evil = await page(t, "/organizations/sluice/issues/bulk/", {
      method: "POST",
      body: new URLSearchParams([
        ["csrf", csrfOf(html)],
        ["status", "unresolved"],
        ["issue", issueId],
        ["next", "//evil.example/"],
      ]),
    });
    expect(evil.headers.get("location")).toBe("/organizations/sluice/issues/");
    const huge = await page(t, "/organizations/sluice/issues/bulk/", {
      method: "POST",
      body: new URLSearchParams({
        csrf: csrfOf(html),
        status: "ignored",
        issue: "1".repeat(100_000),
      }),
    });
    expect(huge.status).toBe(413);
    expect(huge.headers.get("content-type")).toContain("text/html");
  });

  it("answers unknown things with error pages, not JSON", async () => {
    for (const path of [
      "/organizations/nope/issues/",
      "/organizations/sluice/issues/999999/",
      "/organizations/sluice/nothing-here/",
      "/settings/sluice/projects/nope/",
      "/organizations/sluice/releases/nope/",
    ]) {
      const res = await page(t, path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type"), path).toContain("text/html");
      expect(await res.text(), path).toContain("<h1>");
    }
  });

  it("lists releases and shows one with its new issues", async () => {
    await waitFor(async () => (await countRows(t.sql, "releases")) === 1);
    const list = await (await page(t, "/organizations/sluice/releases/")).text();
    const [href] = links(list, "web@1.0.0");
    expect(href).toBe("/organizations/sluice/releases/web%401.0.0/");
    const one = await (await page(t, href as string)).text();
    expect(one).toContain("<h1>Release web@1.0.0</h1>");
    expect(links(one, "TypeError: cart.items is undefined")).toHaveLength(1);
    expect(one).toContain(">Deploys</h2>");
    expect(one).toContain(">Artifact files</h2>");
  });

  it("creates a project and shows its DSN to copy, and the empty project's snippet", async () => {
    const list = await (await page(t, "/settings/sluice/projects/")).text();
    labelledControl(list, "Project slug");
    const bad = await page(t, "/settings/sluice/projects/", {
      method: "POST",
      body: new URLSearchParams({ csrf: csrfOf(list), slug: "Not A Slug" }),
    });
    expect(bad.status).toBe(400);
    const res = await page(t, "/settings/sluice/projects/", {
      method: "POST",
      body: new URLSearchParams({ csrf: csrfOf(list), slug: "checkout", name: "Checkout" }),
    });
    expect(res.status).toBe(303);
    const settings = await (await page(t, res.headers.get("location") as string)).text();
    const dsn = labelledControl(settings, "DSN");
    expect(dsn).toMatch(/value="http:\/\/[0-9a-f]{32}@127\.0\.0\.1:\d+\/\d+"/);
    expect(buttons(settings)).toContain("Copy DSN");
    const projectId = /\/(\d+)"/.exec(dsn)?.[1];
    const empty = await (
      await page(t, `/organizations/sluice/issues/?project=${projectId}`)
    ).text();
    expect(empty).toContain("No issues in checkout yet");
    expect(empty).toContain("Sentry.init({ dsn: &quot;http://");
  });

  it("invites a member and changes a role from the members page", async () => {
    const members = await (await page(t, "/settings/sluice/members/")).text();
    expect(members).toContain("<h1>Members</h1>");
    labelledControl(members, "Email");
    labelledControl(members, "Role");
    const invite = await page(t, "/settings/sluice/members/", {
      method: "POST",
      body: new URLSearchParams({ csrf: owner.csrf, email: "new@example.com", role: "admin" }),
    });
    expect(invite.status, await invite.clone().text()).toBe(303);
    const after = await (await page(t, invite.headers.get("location") as string)).text();
    expect(after).toContain("Invited new@example.com");
    expect(after).toMatch(/new@example\.com<span class="muted"> \(invited\)/);
    const again = await page(t, "/settings/sluice/members/", {
      method: "POST",
      body: new URLSearchParams({ csrf: owner.csrf, email: "new@example.com", role: "admin" }),
    });
    expect(again.status).toBe(409);
    const memberId =
      /action="\/settings\/sluice\/members\/(\d+)\/"(?:(?!action=)[\s\S])*?Change role of new@example\.com/.exec(
        after,
      )?.[1];
    expect(memberId).toBeDefined();
    const change = await page(t, `/settings/sluice/members/${memberId}/`, {
      method: "POST",
      body: new URLSearchParams({ csrf: owner.csrf, role: "manager" }),
    });
    expect(change.status, await change.clone().text()).toBe(303);
    const { rows } = await t.sql.query("SELECT role FROM organization_members WHERE email = $1", [
      "new@example.com",
    ]);
    expect(rows).toEqual([{ role: "manager" }]);
  });

  it("changes the password on the account page, signing the sessions out", async () => {
    await createTestUser(t, "pw@example.com", "sluice", "member");
    const session = await signInForm(t, "pw@example.com");
    const account = await (await page(t, "/settings/account/", {}, session)).text();
    labelledControl(account, "Current password");
    labelledControl(account, "New password");
    expect(account).toContain(">User auth tokens</h2>");
    const wrong = await page(
      t,
      "/settings/account/password/",
      {
        method: "POST",
        body: new URLSearchParams({
          csrf: session.csrf,
          current: "nope nope nope",
          password: "a new secret 1",
        }),
      },
      session,
    );
    expect(wrong.status).toBe(403);
    const ok = await page(
      t,
      "/settings/account/password/",
      {
        method: "POST",
        body: new URLSearchParams({
          csrf: session.csrf,
          current: "correct horse battery",
          password: "a new secret 1",
        }),
      },
      session,
    );
    expect(ok.status).toBe(303);
    expect((await page(t, "/settings/account/", {}, session)).status).toBe(302);
    await signInForm(t, "pw@example.com", "a new secret 1");
  });

  it("serves its own stylesheet and script, cacheable", async () => {
    const html = await (await page(t, "/organizations/sluice/issues/")).text();
    const css = /href="(\/_static\/sluice\.css\?v=[0-9a-f]+)"/.exec(html)?.[1] as string;
    const res = await page(t, css);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/css");
    const again = await page(t, css, {
      headers: { "If-None-Match": res.headers.get("etag") as string },
    });
    expect(again.status).toBe(304);
    expect((await page(t, "/_static/nope.js")).status).toBe(404);
  });
});

/**
 * Issues #12 and #13 on the web: the project's grouping rules and client
 * keys pages, its limits on the settings page, merge from the issue list
 * and unmerge from the issue's merged page, each through the same checks
 * as the API, and only for the roles the API allows.
 */
describe("the grouping and rate limit pages", () => {
  let t: TestSluice;
  let admin: TestSession;
  let member: TestSession;
  const base = "/settings/sluice/projects/default";
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    await createTestUser(t, "admin@example.com", "sluice", "admin");
    await createTestUser(t, "member@example.com", "sluice", "member");
    await createTestUser(t, "stranger@example.com", "other", "owner");
    await createProjectWithKey(t.services, "other", "theirs");
    admin = await signInForm(t, "admin@example.com");
    member = await signInForm(t, "member@example.com");
  });
  afterAll(async () => t?.stop());

  /** Sends error events through ingest, waits until grouped; returns their issue ids. */
  async function send(events: { type: string; value: string }[]): Promise<string[]> {
    const url = `${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`;
    const ids: string[] = [];
    for (const { type, value } of events) {
      const eventId = crypto.randomUUID().replaceAll("-", "");
      const body = { event_id: eventId, exception: { values: [{ type, value }] } };
      expect((await fetch(url, { method: "POST", body: JSON.stringify(body) })).status).toBe(200);
      ids.push(eventId);
    }
    const grouped = async () =>
      (
        await t.sql.query(
          "SELECT event_id::text AS e, issue_id::text AS i FROM events WHERE event_id = ANY($1::uuid[]) AND processed_at IS NOT NULL",
          [ids],
        )
      ).rows;
    await waitFor(async () => (await grouped()).length === ids.length, 20_000, "events grouped");
    const issueOf = new Map((await grouped()).map((r) => [r.e.replaceAll("-", ""), r.i]));
    return ids.map((id) => issueOf.get(id) as string);
  }

  const post = (path: string, fields: Record<string, string | string[]>, as: TestSession) => {
    const body = new URLSearchParams({ csrf: as.csrf });
    for (const [name, value] of Object.entries(fields)) {
      for (const v of ([] as string[]).concat(value)) body.append(name, v);
    }
    return page(t, path, { method: "POST", body }, as);
  };

  it("saves fingerprint rules from the grouping page, and the next events land in the rule's issue", async () => {
    const before = await send([
      { type: "QuotaError", value: "over quota for alice" },
      { type: "QuotaError", value: "rate limited bob" },
    ]);
    expect(new Set(before).size).toBe(2);
    const html = await (await page(t, `${base}/issue-grouping/`, {}, admin)).text();
    expect(labelledControl(html, "Fingerprint rules")).toContain('name="fingerprintingRules"');
    expect(labelledControl(html, "Stack trace rules")).toContain('name="groupingEnhancements"');
    expect(buttons(html)).toContain("Save grouping rules");
    // A browser posts textarea lines with CRLF.
    const rule = '# quota\r\ntype:QuotaError -> quota-errors title="Quota exceeded"';
    const saved = await post(`${base}/issue-grouping/`, { fingerprintingRules: rule }, admin);
    expect(saved.status).toBe(303);
    expect(saved.headers.get("location")).toBe(`${base}/issue-grouping/?saved=1`);
    const shown = await (await page(t, `${base}/issue-grouping/?saved=1`, {}, admin)).text();
    expect(shown).toContain("Grouping rules saved.");
    expect(shown).toContain("type:QuotaError -&gt; quota-errors");
    const project = (await (await api(t, "/api/0/projects/sluice/default/")).json()) as Record<
      string,
      string
    >;
    expect(project.fingerprintingRules).toBe(rule.replace("\r\n", "\n"));

    await new Promise((r) => setTimeout(r, GROUPING_RULES_TTL_MS + 200));
    const after = await send([
      { type: "QuotaError", value: "over quota for carol" },
      { type: "QuotaError", value: "no more for dave" },
    ]);
    expect(new Set(after).size).toBe(1);
    expect(before).not.toContain(after[0]);
    const issue = await (
      await page(t, `/organizations/sluice/issues/${after[0]}/`, {}, admin)
    ).text();
    expect(issue).toContain("<h1>Quota exceeded</h1>");
  });

  it("shows a rule that does not parse next to its field, by line, and saves nothing", async () => {
    const before = (await (await api(t, "/api/0/projects/sluice/default/")).json()) as Record<
      string,
      string
    >;
    const bad = await post(
      `${base}/issue-grouping/`,
      {
        fingerprintingRules: "type:A -> a\r\nnot a rule at all",
        groupingEnhancements: "stack.module:foo -app",
      },
      admin,
    );
    expect(bad.status).toBe(400);
    const html = await bad.text();
    const alert =
      /<p id="rules-fingerprintingRules-error" class="notice error" role="alert">([^<]*)<\/p>/.exec(
        html,
      )?.[1];
    expect(alert).toContain("Invalid syntax near &quot;not a rule at all&quot; (line 2)");
    expect(html).not.toContain('id="rules-groupingEnhancements-error"');
    const field = labelledControl(html, "Fingerprint rules");
    expect(field).toContain('aria-invalid="true"');
    expect(field).toContain('aria-describedby="rules-fingerprintingRules-error');
    expect(html).toContain("not a rule at all</textarea>");
    const after = (await (await api(t, "/api/0/projects/sluice/default/")).json()) as Record<
      string,
      string
    >;
    expect(after.fingerprintingRules).toBe(before.fingerprintingRules);
    expect(after.groupingEnhancements).toBe(before.groupingEnhancements);
    // The stack trace field is checked by the same parser.
    const badStack = await post(
      `${base}/issue-grouping/`,
      { groupingEnhancements: "stack.module:foo +nonsense" },
      admin,
    );
    expect(badStack.status).toBe(400);
    expect(await badStack.text()).toContain('id="rules-groupingEnhancements-error"');
    // No CSRF token: refused.
    const forged = await page(
      t,
      `${base}/issue-grouping/`,
      { method: "POST", body: new URLSearchParams({ fingerprintingRules: "" }) },
      admin,
    );
    expect(forged.status).toBe(403);
  });

  it("sets a key's rate limit on the keys page, as GET …/keys/ then reports, with the API's bounds", async () => {
    const html = await (await page(t, `${base}/keys/`, {}, admin)).text();
    expect(html).toContain("<h1>Client keys (DSN)</h1>");
    expect(labelledControl(html, "DSN of Default")).toContain(`value="${t.dsn}"`);
    const keyId = /action="\/settings\/sluice\/projects\/default\/keys\/(\d+)\/rate-limit\/"/.exec(
      html,
    )?.[1];
    expect(keyId).toBeDefined();
    expect(labelledControl(html, "Events")).toContain('name="count"');
    expect(labelledControl(html, "Window (seconds)")).toContain('name="window"');
    const path = `${base}/keys/${keyId}/rate-limit/`;
    const saved = await post(path, { count: "5", window: "60" }, admin);
    expect(saved.status).toBe(303);
    const keys = async () =>
      (await (await api(t, "/api/0/projects/sluice/default/keys/")).json()) as {
        rateLimit: unknown;
      }[];
    expect((await keys())[0]?.rateLimit).toEqual({ window: 60, count: 5 });
    const shown = await (await page(t, saved.headers.get("location") as string, {}, admin)).text();
    expect(shown).toContain("Rate limit of key Default saved.");
    expect(shown).toContain("5 events per 60 seconds");

    for (const [fields, message] of [
      [{ count: "5", window: "86401" }, "from 0 to 86,400"],
      [{ count: "-1", window: "60" }, "0 or more"],
      [{ count: "5", window: "" }, "Give both"],
    ] as const) {
      const bad = await post(path, fields, admin);
      expect(bad.status).toBe(400);
      expect(await bad.text()).toContain(message);
    }
    expect((await keys())[0]?.rateLimit).toEqual({ window: 60, count: 5 });
    expect((await post(path, { count: "", window: "" }, admin)).status).toBe(303);
    expect((await keys())[0]?.rateLimit).toBeNull();
  });

  it("shows spike protection and quotas on the project settings page", async () => {
    const quiet = await (await page(t, `${base}/`, {}, admin)).text();
    expect(quiet).toContain("Spike protection");
    expect(quiet).toMatch(/<dt>Spike protection<\/dt><dd>On<\/dd>/);
    expect(quiet).toContain("Not active");
    expect(quiet).toContain("This project has no quotas of its own.");
    expect(links(quiet, "Issue grouping")).toEqual([`${base}/issue-grouping/`]);
    const quota = await api(t, "/api/0/projects/sluice/default/quotas/", {
      method: "POST",
      body: JSON.stringify({ categories: ["transaction"], limit: 12345, window: 3600 }),
    });
    expect(quota.status).toBe(201);
    // As ingest records a spike it saw.
    await recordSpike(t.services.db.orm, t.projectId, { active: true, bound: 120, at: new Date() });
    const spiking = await (await page(t, `${base}/`, {}, admin)).text();
    expect(spiking).toContain("Active: limited to 120 error events a minute");
    expect(spiking).toMatch(/<table aria-label="Project quotas">[\s\S]*transaction[\s\S]*12,345/);
    expect(buttons(spiking)).toContain("Turn spike protection off");
    const off = await post(`${base}/spike-protection/`, { enabled: "false" }, admin);
    expect(off.status).toBe(303);
    const spikeApi = (await (
      await api(t, "/api/0/projects/sluice/default/spike-protection/")
    ).json()) as { isEnabled: boolean; isActive: boolean; bound: number };
    expect(spikeApi).toMatchObject({ isEnabled: false, isActive: true, bound: 120 });
    const offPage = await (await page(t, `${base}/`, {}, admin)).text();
    expect(offPage).toMatch(/<dt>Spike protection<\/dt><dd>Off<\/dd>/);
    expect(buttons(offPage)).toContain("Turn spike protection on");
    // A member sees it, without the button, and may not change it.
    const seen = await (await page(t, `${base}/`, {}, member)).text();
    expect(seen).toContain("Spike protection");
    expect(buttons(seen)).not.toContain("Turn spike protection on");
    expect((await post(`${base}/spike-protection/`, { enabled: "true" }, member)).status).toBe(403);
    await setSpikeProtectionEnabled(t.services.db.orm, t.projectId, true);
  });

  it("merges selected issues from the list and unmerges a hash from the issue's merged page", async () => {
    const [a, b] = await send([
      { type: "MergeA", value: "first" },
      { type: "MergeB", value: "second" },
    ]);
    const list = await (await page(t, "/organizations/sluice/issues/", {}, member)).text();
    expect(buttons(list)).toContain("Merge selected");
    // One issue is not a merge; another organization's issue id is ignored.
    const theirs = await t.sql.query(
      `INSERT INTO issues (project_id, short_id, title, first_seen, last_seen)
       SELECT id, 1, 'TheirError', now(), now() FROM projects WHERE slug = 'theirs' RETURNING id`,
    );
    const lone = await post(
      "/organizations/sluice/issues/bulk/",
      { merge: "1", issue: [a as string, String(theirs.rows[0].id)] },
      member,
    );
    expect(lone.status).toBe(400);
    expect(await lone.text()).toContain("Select two or more issues");
    const merged = await post(
      "/organizations/sluice/issues/bulk/",
      { merge: "1", issue: [a as string, b as string] },
      member,
    );
    expect(merged.status).toBe(303);
    const parent = /\/issues\/(\d+)\/\?merged=1$/.exec(merged.headers.get("location") ?? "")?.[1];
    expect([a, b]).toContain(parent);
    const child = parent === a ? b : a;
    // The merged issue's pages redirect to the issue it was merged into.
    const old = await page(t, `/organizations/sluice/issues/${child}/events/?x=1`, {}, member);
    expect(old.status).toBe(302);
    expect(old.headers.get("location")).toBe(`/organizations/sluice/issues/${parent}/events/?x=1`);
    const parentPage = await (
      await page(t, merged.headers.get("location") as string, {}, member)
    ).text();
    expect(parentPage).toContain("Merged 1 issue into this one");
    expect(links(parentPage, "Merged issues")).toEqual([
      `/organizations/sluice/issues/${parent}/merged/`,
    ]);

    const mergedPage = await (
      await page(t, `/organizations/sluice/issues/${parent}/merged/`, {}, member)
    ).text();
    const hashes = [
      ...mergedPage.matchAll(/<td class="mono">([0-9a-f]{32})<\/td><td class="num">1<\/td>/g),
    ].map((m) => m[1] as string);
    expect(hashes).toHaveLength(2);
    expect(buttons(mergedPage)).toEqual(expect.arrayContaining(hashes.map((h) => `Unmerge ${h}`)));
    const unmerge = await post(
      `/organizations/sluice/issues/${parent}/merged/unmerge/`,
      { hash: hashes[0] as string },
      member,
    );
    expect(unmerge.status).toBe(303);
    const newIssue = /\?unmerged=(\d+)$/.exec(unmerge.headers.get("location") ?? "")?.[1];
    expect(newIssue).toBeDefined();
    const left = (await (
      await api(t, `/api/0/organizations/sluice/issues/${parent}/hashes/`)
    ).json()) as { id: string }[];
    expect(left.map((h) => h.id)).toEqual([hashes[1]]);
    const moved = (await (await api(t, `/api/0/issues/${newIssue}/`)).json()) as { count: string };
    expect(moved.count).toBe("1");
    // Unmerging it again: it is gone from the issue.
    const again = await post(
      `/organizations/sluice/issues/${parent}/merged/unmerge/`,
      { hash: hashes[0] as string },
      member,
    );
    expect(again.status).toBe(409);
  });

  it("lets a member read but not change grouping rules or key limits; another organization's project is 404", async () => {
    const html = await (await page(t, `${base}/issue-grouping/`, {}, member)).text();
    expect(labelledControl(html, "Fingerprint rules")).toContain("readonly");
    expect(buttons(html)).not.toContain("Save grouping rules");
    expect(html).toContain("changing them needs project:write");
    const refused = await post(`${base}/issue-grouping/`, { fingerprintingRules: "" }, member);
    expect(refused.status).toBe(403);
    const keys = await (await page(t, `${base}/keys/`, {}, member)).text();
    expect(keys).toContain("DSN of Default");
    expect(keys).not.toContain("/rate-limit/");
    const keyId = (
      await t.sql.query("SELECT id FROM project_keys WHERE project_id = $1", [t.projectId])
    ).rows[0].id;
    expect(
      (await post(`${base}/keys/${keyId}/rate-limit/`, { count: "1", window: "1" }, member)).status,
    ).toBe(403);
    const project = (await (await api(t, "/api/0/projects/sluice/default/")).json()) as Record<
      string,
      string
    >;
    expect(project.fingerprintingRules).toContain("quota-errors");

    for (const path of [
      "/settings/other/projects/theirs/issue-grouping/",
      "/settings/other/projects/theirs/keys/",
      "/settings/sluice/projects/theirs/issue-grouping/",
    ]) {
      expect((await page(t, path, {}, admin)).status, path).toBe(404);
    }
    const theirKey = (
      await t.sql.query(
        "SELECT k.id FROM project_keys k JOIN projects p ON p.id = k.project_id WHERE p.slug = 'theirs'",
      )
    ).rows[0].id;
    const cross = await post(
      `${base}/keys/${theirKey}/rate-limit/`,
      { count: "1", window: "1" },
      admin,
    );
    expect(cross.status).toBe(404);
    const theirIssue = (
      await t.sql.query(
        "SELECT i.id FROM issues i JOIN projects p ON p.id = i.project_id WHERE p.slug = 'theirs'",
      )
    ).rows[0].id;
    expect(
      (await page(t, `/organizations/sluice/issues/${theirIssue}/merged/`, {}, admin)).status,
    ).toBe(404);
    expect(
      (
        await post(
          `/organizations/sluice/issues/${theirIssue}/merged/unmerge/`,
          { hash: "0".repeat(32) },
          admin,
        )
      ).status,
    ).toBe(404);
    const stranger = await signInForm(t, "stranger@example.com");
    expect((await page(t, `${base}/issue-grouping/`, {}, stranger)).status).toBe(404);
    expect(
      (await post(`${base}/issue-grouping/`, { fingerprintingRules: "" }, stranger)).status,
    ).toBe(404);
  });
});
