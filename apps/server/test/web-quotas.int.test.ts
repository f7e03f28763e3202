import { createQuota, ensureProject, findOrganization } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestUser, signInForm, type TestSession } from "./accounts-harness.ts";
import { api, startTestSluice, type TestSluice } from "./harness.ts";

/**
 * The quota pages over HTTP against a real server: a project's and an
 * organization's quotas added and removed through forms, checked as
 * `POST …/quotas/` checks them (errors by field, nothing stored), what the
 * API then reports, CSRF, the API's scopes (project:write, org:write), and
 * tenancy (another organization's project and quota are 404s).
 */

// biome-ignore lint/suspicious/noExplicitAny: test assertions walk API answers.
type Json = any;

describe("the quota pages", () => {
  let t: TestSluice;
  let owner: TestSession;
  let admin: TestSession;
  let member: TestSession;
  let foreignQuotaId: number;

  const page = (path: string, as: TestSession | null, init: RequestInit = {}) =>
    fetch(`${t.url}${path}`, {
      redirect: "manual",
      ...init,
      headers: { ...(as ? { cookie: as.cookie } : {}), ...(init.headers ?? {}) },
    });
  const post = (path: string, as: TestSession, fields: [string, string][], csrf = as.csrf) =>
    page(path, as, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams([["csrf", csrf], ...fields]),
    });
  const projectQuotas = async (): Promise<Json[]> =>
    (await api(t, "/api/0/projects/sluice/default/quotas/")).json() as Promise<Json[]>;
  const organizationQuotas = async (): Promise<Json[]> =>
    (await api(t, "/api/0/organizations/sluice/quotas/")).json() as Promise<Json[]>;

  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    await createTestUser(t, "owner@example.com", "sluice", "owner");
    await createTestUser(t, "admin@example.com", "sluice", "admin");
    await createTestUser(t, "member@example.com", "sluice", "member");
    owner = await signInForm(t, "owner@example.com");
    admin = await signInForm(t, "admin@example.com");
    member = await signInForm(t, "member@example.com");
    await createTestUser(t, "stranger@example.com", "other", "owner");
    const { orm } = t.services.db;
    const other = await findOrganization(orm, "other");
    if (!other) throw new Error("no organization other");
    const { project } = await ensureProject(orm, other.id, "secret", "secret");
    const quota = await createQuota(orm, {
      organizationId: other.id,
      projectId: project.id,
      categories: ["error"],
      windowSeconds: 60,
      quotaLimit: 5,
      reasonCode: "project_quota",
    });
    foreignQuotaId = quota.id;
  });
  afterAll(async () => t?.stop());

  it("adds a project quota through the form, as POST …/quotas/ would, and removes it", async () => {
    const empty = await (await page("/settings/sluice/projects/default/quotas/", admin)).text();
    expect(empty).toContain("No quotas for project default yet.");
    expect(empty).toContain('<label for="quota-limit">Limit</label>');

    const added = await post("/settings/sluice/projects/default/quotas/", admin, [
      ["categories", "error"],
      ["categories", "attachment"],
      ["limit", "100"],
      ["window", "3600"],
      ["reasonCode", ""],
    ]);
    expect(added.status).toBe(303);
    expect(added.headers.get("location")).toBe(
      "/settings/sluice/projects/default/quotas/?saved=added",
    );
    const [quota, ...rest] = await projectQuotas();
    expect(rest).toEqual([]);
    expect(quota).toMatchObject({
      scope: "project",
      project: "default",
      categories: ["error", "attachment"],
      limit: 100,
      window: 3600,
      reasonCode: "project_quota",
    });
    const listed = await (await page(added.headers.get("location") as string, admin)).text();
    expect(listed).toContain("Quota added.");
    expect(listed).toContain("error, attachment");
    // The project settings page links to it and shows it.
    const settings = await (await page("/settings/sluice/projects/default/", admin)).text();
    expect(settings).toContain('href="/settings/sluice/projects/default/quotas/"');
    expect(settings).toContain("error, attachment");

    const removed = await post(
      `/settings/sluice/projects/default/quotas/${quota.id}/delete/`,
      admin,
      [],
    );
    expect(removed.status).toBe(303);
    expect(await projectQuotas()).toEqual([]);
  });

  it("shows errors by field and stores nothing for a bad form", async () => {
    const bad = await post("/settings/sluice/projects/default/quotas/", owner, [
      ["categories", "bogus"],
      ["limit", "lots"],
      ["window", "0"],
      ["reasonCode", "Not Valid!"],
    ]);
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(html).toContain("The quota was not added: fix the errors below.");
    expect(html).toMatch(/id="quota-limit-error"[^>]*>Enter a whole number of events/);
    expect(html).toMatch(/id="quota-window-error"[^>]*>Enter a whole number of seconds from 1/);
    expect(html).toMatch(/id="quota-categories-error"[^>]*>Choose only the categories listed/);
    expect(html).toMatch(/id="quota-reasonCode-error"[^>]*>reasonCode must be 1-64/);
    // What was typed comes back.
    expect(html).toContain('value="lots"');
    expect(await projectQuotas()).toEqual([]);

    const noCsrf = await post(
      "/settings/sluice/projects/default/quotas/",
      owner,
      [
        ["limit", "1"],
        ["window", "60"],
      ],
      "wrong",
    );
    expect(noCsrf.status).toBe(403);
    expect(await projectQuotas()).toEqual([]);
  });

  it("organization quotas need org:write: an owner adds one, an admin reads them only", async () => {
    const added = await post("/settings/sluice/quotas/", owner, [
      ["limit", "0"],
      ["window", "60"],
      ["reasonCode", "frozen"],
    ]);
    expect(added.status).toBe(303);
    const quotas = await organizationQuotas();
    expect(quotas).toMatchObject([
      { scope: "organization", categories: [], limit: 0, window: 60, reasonCode: "frozen" },
    ]);

    const read = await (await page("/settings/sluice/quotas/", admin)).text();
    expect(read).toContain("frozen");
    expect(read).toContain("changing them needs org:write");
    expect(read).not.toContain("Add a quota");
    const refused = await post("/settings/sluice/quotas/", admin, [
      ["limit", "5"],
      ["window", "60"],
    ]);
    expect(refused.status).toBe(403);
    const refusedDelete = await post(`/settings/sluice/quotas/${quotas[0].id}/delete/`, admin, []);
    expect(refusedDelete.status).toBe(403);
    expect(await organizationQuotas()).toHaveLength(1);

    const removed = await post(`/settings/sluice/quotas/${quotas[0].id}/delete/`, owner, []);
    expect(removed.status).toBe(303);
    expect(await organizationQuotas()).toEqual([]);
  });

  it("a member reads a project's quotas and cannot change them", async () => {
    const read = await page("/settings/sluice/projects/default/quotas/", member);
    expect(read.status).toBe(200);
    expect(await read.text()).toContain("changing them needs project:write");
    const refused = await post("/settings/sluice/projects/default/quotas/", member, [
      ["limit", "1"],
      ["window", "60"],
    ]);
    expect(refused.status).toBe(403);
    expect(await projectQuotas()).toEqual([]);
  });

  it("another organization's project and quotas are 404s", async () => {
    expect((await page("/settings/other/quotas/", owner)).status).toBe(404);
    expect((await page("/settings/other/projects/secret/quotas/", owner)).status).toBe(404);
    // A quota id of another organization's project, through this organization's path.
    const foreign = await post(
      `/settings/sluice/projects/default/quotas/${foreignQuotaId}/delete/`,
      owner,
      [],
    );
    expect(foreign.status).toBe(404);
    const stillThere = await t.sql.query("SELECT 1 FROM quotas WHERE id = $1", [foreignQuotaId]);
    expect(stillThere.rowCount).toBe(1);
  });
});
