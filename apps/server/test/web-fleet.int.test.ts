import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInfo } from "../src/build-info.ts";
import { firstOwnerLink } from "../src/commands/users.ts";
import { createTestUser, signInForm, type TestSession, userToken } from "./accounts-harness.ts";
import { launchChromium } from "./chromium.ts";
import { startTestSluice, type TestSluice, waitFor } from "./harness.ts";
import { type NodeProcess, sluiceJson, startNode, stopNode, type Version } from "./processes.ts";

/**
 * The fleet page (issue #18): `/manage/fleet/` lists the live nodes of the
 * registry for a superuser, as `GET /api/0/internal/fleet/` does; the first
 * owner `npm start` sets up is a superuser; `sluice users set-superuser`
 * grants and revokes it; an organization owner without it gets 404 on the
 * page and 403 on the API, as before. Two real nodes: this process and a
 * `sluice serve --role=api` child on the same database.
 */

const root = new URL("../../../", import.meta.url).pathname;
const current: Version = { label: "current", root };
const sluiceBin = join(root, "apps/server/bin/sluice.js");
const shots = join(root, ".web-screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PASSWORD = "correct horse battery";
const FAST = { SLUICE_NODE_HEARTBEAT_MS: "200", SLUICE_NODE_AGE_OUT_MS: "5000" };

type ApiNode = { id: string; host: string; release: string; commit: string; roles: string[] };

describe("the fleet page and the superuser", () => {
  let t: TestSluice;
  let second: NodeProcess;
  let env: Record<string, string>;
  let admin: TestSession;
  let owner: TestSession;
  const children: ChildProcess[] = [];

  const page = (path: string, as: TestSession | null) =>
    fetch(`${t.url}${path}`, { redirect: "manual", headers: as ? { cookie: as.cookie } : {} });
  const isSuperuser = async (email: string) =>
    (await t.sql.query("SELECT is_superuser FROM users WHERE email = $1", [email])).rows[0]
      ?.is_superuser as boolean | undefined;

  beforeAll(async () => {
    t = await startTestSluice({ redis: false, env: FAST });
    env = { DATABASE_URL: t.config.databaseUrl as string, REDIS_URL: "", ...FAST };
    second = await startNode(current, "api", env, children);
  }, 60_000);
  afterAll(async () => {
    if (second) await stopNode(second).catch(() => undefined);
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await t?.stop();
  });

  it("makes the first owner npm start sets up a superuser, whose session sees both live nodes on /manage/fleet/", async () => {
    const link = await firstOwnerLink(t.services);
    expect(link).not.toBeNull();
    const setup = await fetch(new URL(new URL(link as string).pathname, t.url), {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: "Admin@Example.com", password: PASSWORD }),
    });
    expect(setup.status).toBe(303);
    expect(await isSuperuser("admin@example.com")).toBe(true);
    admin = await signInForm(t, "admin@example.com", PASSWORD);

    const response = await page("/manage/fleet/", admin);
    expect(response.status).toBe(200);
    const html = await response.text();
    const { release, commit } = buildInfo();
    const nodes = (await (
      await fetch(`${t.url}/api/0/internal/fleet/`, {
        headers: { Authorization: `Bearer ${t.token}` },
      })
    ).json()) as ApiNode[];
    expect(nodes.map((n) => n.roles.join(",")).sort()).toEqual(
      ["api", "ingest,api,worker,alerts"].sort(),
    );
    const rows = [...html.matchAll(/<tr><th scope="row">([\s\S]*?)<\/tr>/g)].map(
      (m) => m[1] as string,
    );
    expect(rows).toHaveLength(2);
    for (const node of nodes) {
      const row = rows.find((r) => r.includes(`<code>${node.id}</code>`));
      expect(row, node.id).toBeDefined();
      expect(row).toContain(`<td>${node.host}</td>`);
      expect(row).toContain(`<td class="nowrap">${release}</td>`);
      expect(row).toContain(`<code title="${commit}">${commit?.slice(0, 12)}</code>`);
      expect(row).toContain(`<td>${node.roles.join(", ")}</td>`);
      expect(row).toMatch(/<td>1[2-9]<\/td>/);
      expect(row).toMatch(/<time datetime="[^"]+" title="[^"]+">\d+ s ago<\/time>/);
    }
    expect(html).toMatch(/<dt>Schema version<\/dt><dd>1[2-9]<\/dd>/);
    expect(html).toContain(
      "<dt>Oldest release the schema supports</dt><dd>every release (no migration has removed anything yet)</dd>",
    );
    expect(html).toContain('<a href="/manage/fleet/" aria-current="page">Admin</a>');

    // The API answers the superuser's session as it answers the instance-admin token.
    const viaSession = await page("/api/0/internal/fleet/", admin);
    expect(viaSession.status).toBe(200);
    expect(((await viaSession.json()) as ApiNode[]).map((n) => n.id).sort()).toEqual(
      nodes.map((n) => n.id).sort(),
    );
    const me = await page("/api/0/users/me/", admin);
    expect(((await me.json()) as { isSuperuser: boolean }).isSuperuser).toBe(true);
    const manage = await page("/manage/", admin);
    expect(manage.status).toBe(302);
    expect(manage.headers.get("location")).toBe("/manage/fleet/");
  });

  it("answers an organization owner who is not a superuser 404 on the page and 403 on the API, and a superuser's user token 403", async () => {
    await createTestUser(t, "owner@example.com", "sluice", "owner", PASSWORD);
    owner = await signInForm(t, "owner@example.com", PASSWORD);
    for (const path of ["/manage/fleet/", "/manage/"]) {
      const refused = await page(path, owner);
      expect(refused.status, path).toBe(404);
      const html = await refused.text();
      expect(html).toContain("There is no page at this address.");
      expect(html).not.toContain("Live nodes");
    }
    const issues = await (await page("/organizations/sluice/issues/", owner)).text();
    expect(issues).toContain("Issues");
    expect(issues).not.toContain("/manage/");
    const api = await page("/api/0/internal/fleet/", owner);
    expect(api.status).toBe(403);
    expect(await api.json()).toEqual({
      detail: "You do not have permission to perform this action.",
    });
    // Without a session, the page asks to sign in, as every page does.
    const anonymous = await page("/manage/fleet/", null);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get("location")).toBe("/auth/login/?next=%2Fmanage%2Ffleet%2F");
    // Superuser status goes with a session, never with a user's token (Sentry's rule).
    const token = await userToken(t, "admin@example.com", ["org:read", "org:write", "org:admin"]);
    const byToken = await fetch(`${t.url}/api/0/internal/fleet/`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(byToken.status).toBe(403);
  });

  it("grants and revokes superuser with sluice users set-superuser, and creates one with users create --superuser", async () => {
    const granted = await sluiceJson(
      current,
      env,
      "users",
      "set-superuser",
      "--email",
      "OWNER@example.com",
    );
    expect(granted).toEqual({ email: "owner@example.com", isSuperuser: true });
    // Sessions are cached for up to 2 s on each node.
    await waitFor(
      async () => (await page("/manage/fleet/", owner)).status === 200,
      5_000,
      "the owner to see the fleet page",
    );
    expect((await page("/api/0/internal/fleet/", owner)).status).toBe(200);
    // The node the CLI did not run in sees it too: any api node serves any session.
    const onSecond = await fetch(`http://127.0.0.1:${second.port}/manage/fleet/`, {
      redirect: "manual",
      headers: { cookie: owner.cookie },
    });
    expect(onSecond.status).toBe(200);

    const revoked = await sluiceJson(
      current,
      env,
      "users",
      "set-superuser",
      "--email",
      "owner@example.com",
      "--revoke",
    );
    expect(revoked).toEqual({ email: "owner@example.com", isSuperuser: false });
    await waitFor(
      async () => (await page("/manage/fleet/", owner)).status === 404,
      5_000,
      "the owner to lose the fleet page",
    );
    expect((await page("/api/0/internal/fleet/", owner)).status).toBe(403);

    const unknown = spawnSync(
      process.execPath,
      [sluiceBin, "users", "set-superuser", "--email", "nobody@example.com"],
      { env: { ...process.env, ...env, LOG_LEVEL: "warn" }, encoding: "utf8" },
    );
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("no user with the address nobody@example.com");

    const create = spawnSync(
      process.execPath,
      [
        sluiceBin,
        "users",
        "create",
        "--email",
        "ops@example.com",
        "--role",
        "member",
        "--superuser",
        "--password-stdin",
        "--json",
      ],
      {
        env: { ...process.env, ...env, LOG_LEVEL: "warn" },
        input: `${PASSWORD}\n`,
        encoding: "utf8",
      },
    );
    expect(create.status, create.stderr).toBe(0);
    expect(JSON.parse(create.stdout)).toMatchObject({ superuser: true, created: true });
    expect(await isSuperuser("ops@example.com")).toBe(true);
    const ops = await signInForm(t, "ops@example.com", PASSWORD);
    expect((await page("/manage/fleet/", ops)).status).toBe(200);
    // Without --superuser, an existing user's status stays as it is.
    const again = spawnSync(
      process.execPath,
      [sluiceBin, "users", "create", "--email", "ops@example.com", "--json"],
      { env: { ...process.env, ...env, LOG_LEVEL: "warn" }, encoding: "utf8" },
    );
    expect(again.status, again.stderr).toBe(0);
    expect(await isSuperuser("ops@example.com")).toBe(true);
  }, 60_000);

  it.skipIf(!existsSync(CHROMIUM))(
    "shows the fleet in a real browser, reached from the Admin link",
    async () => {
      const chromium = await launchChromium();
      try {
        const context = await chromium.browser.newContext({
          viewport: { width: 1400, height: 700 },
        });
        const browserPage = await context.newPage();
        await browserPage.goto(`${t.url}/auth/login/`);
        await browserPage.getByLabel("Email").fill("admin@example.com");
        await browserPage.getByLabel("Password").fill(PASSWORD);
        await browserPage.getByRole("button", { name: "Sign in" }).click();
        await browserPage.waitForURL(`${t.url}/organizations/sluice/issues/`);
        await browserPage.getByRole("link", { name: "Admin", exact: true }).click();
        await browserPage.waitForURL(`${t.url}/manage/fleet/`);
        expect(await browserPage.getByRole("heading", { name: "Fleet" }).count()).toBe(1);
        const table = browserPage.getByRole("table", { name: "Live nodes" });
        expect(await table.getByRole("row").count()).toBe(3);
        expect(
          await table.getByRole("rowheader", { name: new RegExp(t.services.instanceId) }).count(),
        ).toBe(1);
        mkdirSync(shots, { recursive: true });
        await browserPage.screenshot({ path: join(shots, "manage-fleet.png"), fullPage: true });
      } finally {
        await chromium.close();
      }
    },
    60_000,
  );
});
