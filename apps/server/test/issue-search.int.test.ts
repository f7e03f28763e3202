import { deleteExpiredIssues } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { createTestUser, signInForm, type TestSession, userToken } from "./accounts-harness.ts";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

/**
 * Issue search by environment and tag (`issue_tag_values`, migration 0010)
 * in the API and the web list, with another organization's tag values out
 * of reach; "resolve in next release" and "resolve in release" against
 * later events; and retention taking an issue's tag rows with it.
 */

type Sent = { url: string; dsnKey: string; projectId: number };

async function send(t: TestSluice, to: Sent, event: Record<string, unknown>): Promise<string> {
  const eventId = crypto.randomUUID().replaceAll("-", "");
  const response = await fetch(`${t.url}/api/${to.projectId}/store/?sentry_key=${to.dsnKey}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ event_id: eventId, platform: "javascript", ...event }),
  });
  expect(response.status).toBe(200);
  await waitFor(
    async () =>
      (await countRows(t.sql, "events", `event_id = '${eventId}' AND processed_at IS NOT NULL`)) ===
      1,
    20_000,
    `event ${eventId} processed`,
  );
  return eventId;
}

const message = (text: string, extra: Record<string, unknown> = {}) => ({
  message: text,
  level: "error",
  ...extra,
});

describe("issue search by tag and environment, and resolve in next release", () => {
  let t: TestSluice;
  let main: Sent;
  let other: Sent;
  let owner: TestSession;
  let memberToken: string;

  const titles = async (path: string, token?: string) => {
    const response = await api(
      t,
      path,
      token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    );
    expect(response.status).toBe(200);
    return ((await response.json()) as { title: string }[]).map((i) => i.title).sort();
  };
  const orgSearch = (query: string, extra = "") =>
    titles(`/api/0/organizations/sluice/issues/?query=${encodeURIComponent(query)}${extra}`);
  const issueIdOf = async (title: string) =>
    String(
      (await t.sql.query("SELECT id FROM issues WHERE title = $1", [title])).rows[0]?.id ?? "",
    );

  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    main = { url: t.url, dsnKey: t.publicKey, projectId: t.projectId };
    const otherProject = await createProjectWithKey(t.services, "elsewhere", "secret");
    other = {
      url: t.url,
      dsnKey: new URL(otherProject.dsn).username,
      projectId: otherProject.project.id,
    };
    await createTestUser(t, "owner@example.com", "sluice", "owner");
    owner = await signInForm(t, "owner@example.com");
    await createTestUser(t, "member@example.com", "sluice", "member");
    memberToken = await userToken(t, "member@example.com", ["event:read", "org:read"]);
    await send(
      t,
      main,
      message("alpha failed", {
        environment: "production",
        server_name: "web-1",
        contexts: { browser: { name: "Chrome", version: "140" } },
        tags: { shard: "s1" },
      }),
    );
    await send(
      t,
      main,
      message("beta failed", {
        environment: "staging",
        server_name: "web-2",
        contexts: { browser: { name: "Firefox", version: "130" } },
      }),
    );
    await send(
      t,
      other,
      message("secret failed", {
        environment: "secret-env",
        server_name: "web-1",
        contexts: { browser: { name: "Chrome", version: "140" } },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  it("searches environment: and tags in the organization's issues API", async () => {
    expect(await orgSearch("environment:production")).toEqual(["alpha failed"]);
    expect(await orgSearch("browser.name:Chrome")).toEqual(["alpha failed"]);
    expect(await orgSearch("!server_name:web-1")).toEqual(["beta failed"]);
    expect(await orgSearch("server_name:[web-1,web-2]")).toEqual(["alpha failed", "beta failed"]);
    expect(await orgSearch("has:shard")).toEqual(["alpha failed"]);
    expect(await orgSearch("!has:shard")).toEqual(["beta failed"]);
    expect(await orgSearch("is:unresolved", "&environment=staging")).toEqual(["beta failed"]);
    expect(await orgSearch("browser.name:Chrome environment:staging")).toEqual([]);
    expect(
      await titles(
        `/api/0/projects/sluice/default/issues/?query=${encodeURIComponent("server_name:web-2")}`,
      ),
    ).toEqual(["beta failed"]);
  });

  it("never shows another organization's issues or tag values", async () => {
    // The other org's event shares server_name and browser; only ours come back.
    expect(await orgSearch("server_name:web-1")).toEqual(["alpha failed"]);
    expect(await orgSearch("environment:secret-env")).toEqual([]);
    expect(
      await titles(
        `/api/0/organizations/sluice/issues/?query=${encodeURIComponent("browser.name:Chrome")}`,
        memberToken,
      ),
    ).toEqual(["alpha failed"]);
    const foreign = await api(t, "/api/0/organizations/elsewhere/issues/?query=", {
      headers: { Authorization: `Bearer ${memberToken}` },
    });
    expect([403, 404]).toContain(foreign.status);
    const web = await (
      await fetch(
        `${t.url}/organizations/sluice/issues/?query=${encodeURIComponent("environment:secret-env")}`,
        { headers: { cookie: owner.cookie } },
      )
    ).text();
    expect(web).not.toContain("secret failed");
    expect(web).toContain("No issues match");
  });

  it("answers 400 for a wrong or unanswerable term", async () => {
    const bad = await api(t, "/api/0/organizations/sluice/issues/?query=level:loud");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toContain("not a level");
    const unanswered = await api(t, "/api/0/organizations/sluice/issues/?query=times_seen:>10");
    expect(unanswered.status).toBe(400);
    const sort = await api(t, "/api/0/organizations/sluice/issues/?sort=priority");
    expect(sort.status).toBe(400);
    const nul = await api(t, "/api/0/organizations/sluice/issues/?query=server_name:a%00b");
    expect(nul.status).toBe(400);
    for (const q of ["query=server_name:a%00b", "environment=a%00b"]) {
      const web = await fetch(`${t.url}/organizations/sluice/issues/?${q}`, {
        headers: { cookie: owner.cookie },
      });
      expect(web.status).toBe(400);
    }
  });

  it("searches tags in the web list and summarizes them on the issue page", async () => {
    const list = async (query: string, extra = "") => {
      const html = await (
        await fetch(
          `${t.url}/organizations/sluice/issues/?query=${encodeURIComponent(query)}${extra}`,
          { headers: { cookie: owner.cookie } },
        )
      ).text();
      return [...html.matchAll(/class="issue-title"[^>]*>([^<]*)</g)].map((m) => m[1]).sort();
    };
    expect(await list("browser.name:Firefox")).toEqual(["beta failed"]);
    expect(await list("!environment:production")).toEqual(["beta failed"]);
    expect(await list("", "&environment=production")).toEqual(["alpha failed"]);
    const id = await issueIdOf("alpha failed");
    const html = await (
      await fetch(`${t.url}/organizations/sluice/issues/${id}/`, {
        headers: { cookie: owner.cookie },
      })
    ).text();
    expect(html).toContain("Over all events of this issue.");
    expect(html).toMatch(/aria-label="Tag browser.name"[\s\S]*?Chrome[\s\S]*?100%/);
  });

  it("keeps an issue resolved in next release for its release and reopens it for a newer one", async () => {
    await send(t, main, message("gamma failed", { release: "app@1.0.0" }));
    const id = await issueIdOf("gamma failed");
    const resolved = await api(t, `/api/0/issues/${id}/`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved", statusDetails: { inNextRelease: true } }),
    });
    expect(resolved.status).toBe(200);
    expect(await resolved.json()).toMatchObject({
      status: "resolved",
      statusDetails: { inNextRelease: true },
    });
    await send(t, main, message("gamma failed", { release: "app@1.0.0" }));
    await send(t, main, message("gamma failed"));
    const still = (await (await api(t, `/api/0/issues/${id}/`)).json()) as {
      status: string;
      count: string;
    };
    expect(still).toMatchObject({ status: "resolved", count: "3" });
    await send(t, main, message("gamma failed", { release: "app@1.1.0" }));
    expect(await (await api(t, `/api/0/issues/${id}/`)).json()).toMatchObject({
      status: "unresolved",
      statusDetails: {},
    });
  });

  it("resolves in a named release through the bulk API and the page's button", async () => {
    const id = await issueIdOf("gamma failed");
    const bulk = await api(t, `/api/0/organizations/sluice/issues/?id=${id}`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved", statusDetails: { inRelease: "app@1.1.0" } }),
    });
    expect(bulk.status).toBe(200);
    expect(await bulk.json()).toMatchObject({
      status: "resolved",
      statusDetails: { inRelease: "app@1.1.0" },
    });
    // An older release is covered; the release it was resolved in is not.
    await send(t, main, message("gamma failed", { release: "app@1.0.0" }));
    expect(await (await api(t, `/api/0/issues/${id}/`)).json()).toMatchObject({
      status: "resolved",
    });
    await send(t, main, message("gamma failed", { release: "app@1.1.0" }));
    expect(await (await api(t, `/api/0/issues/${id}/`)).json()).toMatchObject({
      status: "unresolved",
    });
    const unknown = await api(t, `/api/0/issues/${id}/`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved", statusDetails: { inRelease: "nope" } }),
    });
    expect(unknown.status).toBe(400);

    const form = await fetch(`${t.url}/organizations/sluice/issues/${id}/status/`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: owner.cookie,
        "content-type": "application/x-www-form-urlencoded",
        origin: t.url,
      },
      body: new URLSearchParams({ csrf: owner.csrf, status: "resolvedInNextRelease" }),
    });
    expect(form.status).toBe(303);
    expect(await (await api(t, `/api/0/issues/${id}/`)).json()).toMatchObject({
      status: "resolved",
      statusDetails: { inNextRelease: true },
    });
    const page = await (
      await fetch(`${t.url}/organizations/sluice/issues/${id}/`, {
        headers: { cookie: owner.cookie },
      })
    ).text();
    expect(page).toContain("resolved in the release after app@1.1.0");
  });

  it("answers Sentry's 400 for next release in a project without releases", async () => {
    const id = await issueIdOf("secret failed");
    const response = await api(t, `/api/0/issues/${id}/`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved", statusDetails: { inNextRelease: true } }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toContain(
      "No release data present",
    );
  });

  it("moves a merged issue's tag values into the parent", async () => {
    const alpha = await issueIdOf("alpha failed");
    const beta = await issueIdOf("beta failed");
    const merged = await api(t, `/api/0/organizations/sluice/issues/?id=${alpha}&id=${beta}`, {
      method: "PUT",
      body: JSON.stringify({ merge: 1 }),
    });
    expect(merged.status).toBe(200);
    const { merge } = (await merged.json()) as { merge: { parent: string } };
    const child = merge.parent === alpha ? beta : alpha;
    expect(await countRows(t.sql, "issue_tag_values", `issue_id = ${child}`)).toBe(0);
    const parentTitle = merge.parent === alpha ? "alpha failed" : "beta failed";
    expect(await orgSearch("browser.name:Chrome")).toEqual([parentTitle]);
    expect(await orgSearch("browser.name:Firefox")).toEqual([parentTitle]);
    const envRows = await t.sql.query(
      "SELECT value, times_seen::int AS n FROM issue_tag_values WHERE issue_id = $1 AND key = 'environment' ORDER BY value",
      [merge.parent],
    );
    expect(envRows.rows).toEqual([
      { value: "production", n: 1 },
      { value: "staging", n: 1 },
    ]);
  });

  it("retention deletes an expired issue's tag rows and no other's", async () => {
    const secretId = await issueIdOf("secret failed");
    expect(await countRows(t.sql, "issue_tag_values", `issue_id = ${secretId}`)).toBeGreaterThan(3);
    const ours = await countRows(t.sql, "issue_tag_values", `project_id = ${main.projectId}`);
    const deleted = await deleteExpiredIssues(
      t.services.db.pool,
      other.projectId,
      new Date(Date.now() + 86_400_000),
      100,
    );
    expect(deleted).toBe(1);
    expect(await countRows(t.sql, "issue_tag_values", `issue_id = ${secretId}`)).toBe(0);
    expect(await countRows(t.sql, "issue_tag_values", `project_id = ${main.projectId}`)).toBe(ours);
  });
});
