import { createAlertRule, ensureProject, findOrganization } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestUser, signInForm, type TestSession } from "./accounts-harness.ts";
import { api, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

/**
 * The alert rule pages, the webhooks plugin page and the usage page over
 * HTTP against a real server: forms that post without JavaScript, through
 * the rules API's validation (field errors on the page), CSRF, the scopes
 * of the API (project:write to change a rule), and tenancy (another
 * organization's rule is a 404).
 */

const FIRST_SEEN = "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition";
const WEBHOOKS = "sentry.rules.actions.notify_event_service.NotifyEventServiceAction";
const EMAIL = "sentry.mail.actions.NotifyEmailAction";
const LEVEL = "sentry.rules.filters.level.LevelFilter";

// biome-ignore lint/suspicious/noExplicitAny: test assertions walk API answers.
type Json = any;

/** The `<ul class="field-errors" id="{field}-errors">` messages of a field. */
function fieldErrors(html: string, field: string): string[] {
  const m = new RegExp(`<ul class="field-errors" id="${field}-errors"[^>]*>(.*?)</ul>`).exec(html);
  return m ? [...(m[1] as string).matchAll(/<li>(.*?)<\/li>/g)].map((x) => x[1] as string) : [];
}

describe("the alert rule and usage pages", () => {
  let t: TestSluice;
  let owner: TestSession;
  let member: TestSession;
  let otherRuleId: number;

  const page = (path: string, as: TestSession | null, init: RequestInit = {}) =>
    fetch(`${t.url}${path}`, {
      redirect: "manual",
      ...init,
      headers: { ...(as ? { cookie: as.cookie } : {}), ...(init.headers ?? {}) },
    });
  const post = (path: string, as: TestSession, fields: Record<string, string>, csrf = as.csrf) =>
    page(path, as, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf, ...fields }),
    });

  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    await createTestUser(t, "owner@example.com", "sluice", "owner");
    await createTestUser(t, "member@example.com", "sluice", "member");
    owner = await signInForm(t, "owner@example.com");
    member = await signInForm(t, "member@example.com");
    // Another organization, its project and rule, which sluice's owner is no member of.
    await createTestUser(t, "stranger@example.com", "other", "owner");
    const { orm, pool } = t.services.db;
    const other = await findOrganization(orm, "other");
    if (!other) throw new Error("no organization other");
    const { project } = await ensureProject(orm, other.id, "secret", "secret");
    const rule = await createAlertRule(
      pool,
      project.id,
      {
        name: "Their rule",
        environment: null,
        actionMatch: "all",
        filterMatch: "all",
        frequencyMinutes: 30,
        conditions: [{ id: FIRST_SEEN }],
        filters: [],
        actions: [{ id: WEBHOOKS, service: "webhooks" }],
      },
      100,
    );
    otherRuleId = rule?.id as number;
  });
  afterAll(async () => t?.stop());

  it("creates a rule through the form, shows it in the list and on its page, as the API does", async () => {
    const empty = await (await page("/organizations/sluice/alerts/rules/", owner)).text();
    expect(empty).toContain("No alert rules yet.");
    expect(empty).toContain('href="/organizations/sluice/alerts/new/issue/"');
    expect(empty).toMatch(
      /<a href="\/organizations\/sluice\/alerts\/rules\/" aria-current="page">Alerts<\/a>/,
    );
    const form = await page("/organizations/sluice/alerts/new/issue/", owner);
    expect(form.status).toBe(200);
    const html = await form.text();
    for (const label of [
      "Rule name",
      "Project",
      "Condition 1",
      "Filter 1",
      "Action 1",
      "Action interval (minutes)",
    ]) {
      expect(html).toContain(`>${label}</label>`);
    }
    const saved = await post("/organizations/sluice/alerts/new/issue/", owner, {
      name: "New checkout errors",
      project: "default",
      actionMatch: "all",
      filterMatch: "all",
      frequency: "10",
      "condition-0": FIRST_SEEN,
      "filter-0": LEVEL,
      "filter-0-match": "gte",
      "filter-0-value": "warning",
      "action-0": WEBHOOKS,
      "action-1": EMAIL,
      "action-1-target": "ops@example.com",
    });
    expect(saved.status).toBe(303);
    const location = saved.headers.get("location") ?? "";
    expect(location).toMatch(
      /^\/organizations\/sluice\/alerts\/rules\/default\/\d+\/details\/\?saved=1$/,
    );
    const rules: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      name: "New checkout errors",
      frequency: 10,
      conditions: [{ id: FIRST_SEEN }],
      filters: [{ id: LEVEL, match: "gte", level: "30" }],
      actions: [
        { id: WEBHOOKS, service: "webhooks" },
        { id: EMAIL, targetType: "Addresses", targetIdentifier: "ops@example.com" },
      ],
      deliveries: { sent: 0, failed: 0, pending: 0 },
    });
    const details = await (await page(location, owner)).text();
    expect(details).toContain("<h1>New checkout errors</h1>");
    expect(details).toContain("The rule is saved.");
    expect(details).toContain("0 sent, 0 failed, 0 pending");
    expect(details).toContain("The event&#39;s level is greater than or equal to warning");
    const list = await (await page("/organizations/sluice/alerts/rules/", owner)).text();
    expect(list).toContain(
      `<a href="/organizations/sluice/alerts/rules/default/${rules[0].id}/details/">New checkout errors</a>`,
    );
    expect(list).toContain("A new issue is created");
    expect(list).toContain("never");
  });

  it("shows the schema's errors by field and keeps what was typed (400)", async () => {
    const bad = await post("/organizations/sluice/alerts/new/issue/", owner, {
      name: "",
      project: "default",
      frequency: "30",
      "condition-0": FIRST_SEEN,
    });
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(html).toContain('role="alert"');
    expect(fieldErrors(html, "name")).toEqual(["This field is required."]);
    const noAction = await post("/organizations/sluice/alerts/new/issue/", owner, {
      name: "Kept name",
      project: "default",
      frequency: "2",
      "condition-0": FIRST_SEEN,
    });
    const second = await noAction.text();
    expect(noAction.status).toBe(400);
    expect(fieldErrors(second, "frequency")).toEqual([
      "Ensure this value is greater than or equal to 5.",
    ]);
    expect(second).toMatch(/id="name" name="name" value="Kept name"/);
    expect(second).toMatch(/<input[^>]*id="frequency"[^>]*aria-invalid="true"/);
    const nodes = await post("/organizations/sluice/alerts/new/issue/", owner, {
      name: "Kept name",
      project: "default",
      frequency: "30",
    });
    const third = await nodes.text();
    expect(fieldErrors(third, "conditions")).toEqual(["Must select a condition"]);
    expect(fieldErrors(third, "actions")).toEqual(["Must select an action"]);
    const unknown = await post("/organizations/sluice/alerts/new/issue/", owner, {
      name: "x",
      project: "secret",
      "condition-0": FIRST_SEEN,
      "action-0": WEBHOOKS,
    });
    expect(unknown.status).toBe(400);
    expect(fieldErrors(await unknown.text(), "project")).toEqual(["Select a project you can see."]);
    const rules: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    expect(rules).toHaveLength(1);
  });

  it("refuses a form without the session's CSRF token", async () => {
    const forged = await post(
      "/organizations/sluice/alerts/new/issue/",
      owner,
      { name: "forged", project: "default", "condition-0": FIRST_SEEN, "action-0": WEBHOOKS },
      "not-the-token",
    );
    expect(forged.status).toBe(403);
    const rules: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    expect(rules.map((r: Json) => r.name)).not.toContain("forged");
  });

  it("edits a rule, with field errors on a bad edit", async () => {
    const [rule]: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    const path = `/organizations/sluice/alerts/rules/default/${rule.id}/`;
    const form = await (await page(path, owner)).text();
    expect(form).toMatch(/id="name" name="name" value="New checkout errors"/);
    expect(form).toMatch(
      /<option value="sentry.rules.conditions.first_seen_event.FirstSeenEventCondition" selected="">/,
    );
    const bad = await post(path, owner, {
      name: "Renamed",
      frequency: "30",
      "condition-0": FIRST_SEEN,
      "action-0": "sentry.integrations.slack.notify_action.SlackNotifyServiceAction",
      "action-0-target": "not a url",
    });
    expect(bad.status).toBe(400);
    expect(fieldErrors(await bad.text(), "actions")[0]).toMatch(/Not a valid URL/);
    const good = await post(path, owner, {
      name: "Renamed",
      frequency: "60",
      actionMatch: "any",
      "condition-0": FIRST_SEEN,
      "action-0": WEBHOOKS,
    });
    expect(good.status).toBe(303);
    const after: Json = await (
      await api(t, `/api/0/projects/sluice/default/rules/${rule.id}/`)
    ).json();
    expect(after).toMatchObject({
      name: "Renamed",
      frequency: 60,
      actionMatch: "any",
      filters: [],
    });
  });

  it("lets a member read rules but not create, edit or delete them (project:write, as the API)", async () => {
    const [rule]: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    const list = await page("/organizations/sluice/alerts/rules/", member);
    expect(list.status).toBe(200);
    const html = await list.text();
    expect(html).toContain("Renamed");
    expect(html).not.toContain("Create alert rule");
    expect((await page("/organizations/sluice/alerts/new/issue/", member)).status).toBe(403);
    const create = await post("/organizations/sluice/alerts/new/issue/", member, {
      name: "by a member",
      project: "default",
      "condition-0": FIRST_SEEN,
      "action-0": WEBHOOKS,
    });
    expect(create.status).toBe(403);
    const base = `/organizations/sluice/alerts/rules/default/${rule.id}/`;
    expect((await page(`${base}details/`, member)).status).toBe(200);
    expect(
      (await post(base, member, { name: "x", "condition-0": FIRST_SEEN, "action-0": WEBHOOKS }))
        .status,
    ).toBe(403);
    expect((await post(`${base}delete/`, member, {})).status).toBe(403);
    const rules: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    expect(rules.map((r: Json) => r.name)).toEqual(["Renamed"]);
  });

  it("hides another organization's rules and projects (404)", async () => {
    expect((await page("/organizations/other/alerts/rules/", owner)).status).toBe(404);
    expect(
      (await page(`/organizations/other/alerts/rules/secret/${otherRuleId}/details/`, owner))
        .status,
    ).toBe(404);
    expect(
      (await page(`/organizations/sluice/alerts/rules/secret/${otherRuleId}/details/`, owner))
        .status,
    ).toBe(404);
    expect(
      (await page(`/organizations/sluice/alerts/rules/default/${otherRuleId}/details/`, owner))
        .status,
    ).toBe(404);
    expect(
      (await post(`/organizations/sluice/alerts/rules/default/${otherRuleId}/delete/`, owner, {}))
        .status,
    ).toBe(404);
    expect((await page("/settings/other/projects/secret/plugins/webhooks/", owner)).status).toBe(
      404,
    );
    expect((await page("/organizations/other/stats/", owner)).status).toBe(404);
    const filtered = await (
      await page("/organizations/sluice/alerts/rules/?project=secret", owner)
    ).text();
    expect(filtered).toContain("No alert rules yet.");
    expect(filtered).not.toContain("Their rule");
    const ours = await (
      await page("/organizations/sluice/alerts/rules/?project=default", owner)
    ).text();
    expect(ours).toContain("Renamed");
    const theirs: Json = await (await api(t, "/api/0/projects/other/secret/rules/")).json();
    expect(theirs.map((r: Json) => r.name)).toEqual(["Their rule"]);
  });

  it("deletes a rule after a confirmation page", async () => {
    const [rule]: Json = await (await api(t, "/api/0/projects/sluice/default/rules/")).json();
    const base = `/organizations/sluice/alerts/rules/default/${rule.id}/`;
    const confirm = await (await page(`${base}delete/`, owner)).text();
    expect(confirm).toContain("<h1>Delete alert rule Renamed?</h1>");
    expect(confirm).toContain(">Delete Renamed</button>");
    const gone = await post(`${base}delete/`, owner, {});
    expect(gone.status).toBe(303);
    expect(gone.headers.get("location")).toBe("/organizations/sluice/alerts/rules/");
    expect((await api(t, `/api/0/projects/sluice/default/rules/${rule.id}/`)).status).toBe(404);
    expect((await page(`${base}details/`, owner)).status).toBe(404);
  });

  it("edits the webhooks plugin's URLs through the API's validation", async () => {
    const path = "/settings/sluice/projects/default/plugins/webhooks/";
    const form = await (await page(path, owner)).text();
    expect(form).toContain('<label for="urls">Callback URLs</label>');
    const bad = await post(path, owner, { urls: "https://ok.example/a\nftp://nope.example/" });
    expect(bad.status).toBe(400);
    const badHtml = await bad.text();
    expect(fieldErrors(badHtml, "urls")).toEqual(["Line 2: Not a valid URL."]);
    expect(badHtml).toContain("ftp://nope.example/");
    const good = await post(path, owner, {
      urls: "https://one.example/hook\n\nhttps://two.example/hook\n",
    });
    expect(good.status).toBe(303);
    const plugin: Json = await (
      await api(t, "/api/0/projects/sluice/default/plugins/webhooks/")
    ).json();
    expect(plugin.enabled).toBe(true);
    expect(plugin.config[0].value).toBe("https://one.example/hook\nhttps://two.example/hook");
    expect((await post(path, member, { urls: "https://evil.example/" })).status).toBe(403);
    const memberView = await (await page(path, member)).text();
    expect(memberView).toContain("https://one.example/hook");
    expect(memberView).not.toContain("<textarea");
  });

  it("shows accepted and rate-limited counts per category, the numbers of stats_v2", async () => {
    // A fresh key limited to 2 events a minute (set in its row: no key cache holds it yet).
    const key = crypto.randomUUID().replaceAll("-", "");
    await t.sql.query(
      "INSERT INTO project_keys (project_id, public_key, rate_limit_count, rate_limit_window) VALUES ($1, $2, 2, 60)",
      [t.projectId, key],
    );
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${t.url}/api/${t.projectId}/store/?sentry_key=${key}`, {
        method: "POST",
        body: JSON.stringify({ message: `usage ${i}` }),
      });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    const stats = async () =>
      (await (
        await api(
          t,
          "/api/0/organizations/sluice/stats_v2/?field=sum(quantity)&groupBy=outcome&category=error&statsPeriod=24h",
        )
      ).json()) as Json;
    await waitFor(
      async () =>
        (await stats()).groups.some(
          (g: Json) => g.by.outcome === "rate_limited" && g.totals["sum(quantity)"] === 3,
        ),
      10_000,
      "rate_limited outcomes",
    );
    const totals = Object.fromEntries(
      (await stats()).groups.map((g: Json) => [g.by.outcome, g.totals["sum(quantity)"]]),
    );
    const html = await (await page("/organizations/sluice/stats/", owner)).text();
    const row = /<tr><th scope="row">Errors<\/th>(.*?)<\/tr>/.exec(html)?.[1] ?? "";
    const cells = [...row.matchAll(/<td class="num">([^<]*)<\/td>/g)].map((m) => m[1]);
    // Accepted, Filtered, Rate limited, Invalid, Client discard, Total dropped.
    expect(cells).toEqual([String(totals.accepted), "0", "3", "0", "0", "3"]);
    expect(totals.accepted).toBe(2);
    expect(html).toContain(`aria-label="Errors: 2 accepted, 3 dropped, last 24 hours"`);
    expect(html).toContain('<th scope="row">Transactions</th>');
    const week = await (
      await page(`/organizations/sluice/stats/?statsPeriod=7d&project=${t.projectId}`, owner)
    ).text();
    expect(week).toContain(`aria-label="Errors: 2 accepted, 3 dropped, last 7 days"`);
    expect((await page("/organizations/sluice/stats/?statsPeriod=1y", owner)).status).toBe(400);
    expect((await page("/organizations/sluice/stats/?project=999999", owner)).status).toBe(404);
    const memberView = await page("/organizations/sluice/stats/", member);
    expect(memberView.status).toBe(200);
  });
});
