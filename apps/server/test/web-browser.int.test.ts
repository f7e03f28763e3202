import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import {
  addProjectTeam,
  addTeamMember,
  ensureProject,
  ensureTeam,
  findMemberByEmail,
  findOrganization,
  setOpenMembership,
} from "@sluice/db";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestUser } from "./accounts-harness.ts";
import { launchChromium } from "./chromium.ts";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

/**
 * The triage loop in a real browser (Debian's Chromium driven by
 * playwright-core): a page whose minified bundle holds @sentry/browser
 * throws; its source maps were uploaded with sentry-cli; the error shows in
 * the issue list and its page names the original function and file;
 * Resolve; the same error again reopens it as a regression; sign out; a
 * member whose teams do not hold the project cannot see it. Elements are
 * found by role and accessible name only. Screenshots of each page go to
 * `.web-screenshots/` (ignored by git) for a person to look at.
 */

const run = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const sentryCli = join(root, "node_modules/.bin/sentry-cli");
const shots = join(root, ".web-screenshots");
const RELEASE = "shop@2.0.0";
const PASSWORD = "correct horse battery";

const CART_JS = `export function applyDiscount(cart) {
  const rate = cart.discount.rate;
  return cart.total * (1 - rate);
}
`;

const MAIN_JS = `import * as Sentry from "@sentry/browser";
import { applyDiscount } from "./cart.js";

Sentry.init({ dsn: __DSN__, release: __RELEASE__, environment: "production" });

document.getElementById("checkout").addEventListener("click", () => {
  const total = applyDiscount({ total: 10 });
  document.getElementById("total").textContent = String(total);
});
`;

const INDEX_HTML = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="/assets/app.min.js" defer></script></head>
<body><h1>Shop</h1><button id="checkout">Check out</button><p id="total"></p></body></html>`;

/** Serves `dir` over HTTP (the shop the browser loads). */
async function serveDirectory(dir: string): Promise<{ url: string; server: Server }> {
  const types: Record<string, string> = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".map": "application/json",
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = join(dir, path === "/" ? "index.html" : path);
    if (!file.startsWith(dir)) return void res.writeHead(404).end();
    try {
      const body = readFileSync(file);
      res
        .writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" })
        .end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe("the web UI in a real browser", () => {
  let t: TestSluice;
  let work: string;
  let shop: { url: string; server: Server };
  let browser: Browser;
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;

  const shot = async (page: Page, name: string) => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  /** Loads the shop and clicks "Check out": the bundle throws and @sentry/browser reports it. */
  const breakCheckout = async (expectedEvents: number) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${shop.url}/`);
    await page.getByRole("button", { name: "Check out" }).click();
    await waitFor(
      async () =>
        (await countRows(t.sql, "events")) === expectedEvents &&
        (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      20_000,
      "the browser's event stored and processed",
    );
    await context.close();
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    t = await startTestSluice({ redis: false });
    await createTestUser(t, "owner@example.com", "sluice", "owner", PASSWORD);
    // A member on a team that holds another project only, in an organization without open membership.
    const { orm } = t.services.db;
    const org = await findOrganization(orm, "sluice");
    if (!org) throw new Error("no organization");
    await setOpenMembership(orm, org.id, false);
    await createTestUser(t, "member@example.com", "sluice", "member", PASSWORD);
    const other = await ensureProject(orm, org.id, "backend", "backend");
    const team = await ensureTeam(orm, org.id, "backend", "backend");
    await addProjectTeam(orm, other.project.id, team.id);
    await addTeamMember(
      orm,
      team.id,
      (await findMemberByEmail(orm, org.id, "member@example.com"))?.id as number,
    );
    work = mkdtempSync(join(tmpdir(), "sluice-web-browser-"));
    mkdirSync(join(work, "src"));
    mkdirSync(join(work, "public/assets"), { recursive: true });
    writeFileSync(join(work, "src/cart.js"), CART_JS);
    writeFileSync(join(work, "src/main.js"), MAIN_JS);
    writeFileSync(join(work, "public/index.html"), INDEX_HTML);
    await build({
      entryPoints: [join(work, "src/main.js")],
      bundle: true,
      platform: "browser",
      format: "iife",
      minify: true,
      sourcemap: true,
      outfile: join(work, "public/assets/app.min.js"),
      nodePaths: [join(root, "node_modules")],
      define: { __DSN__: JSON.stringify(t.dsn), __RELEASE__: JSON.stringify(RELEASE) },
      logLevel: "silent",
    });
    const cliEnv = {
      PATH: process.env.PATH,
      HOME: work,
      SENTRY_URL: t.url,
      SENTRY_AUTH_TOKEN: t.token,
      SENTRY_ORG: "sluice",
      SENTRY_PROJECT: "default",
      SENTRY_LOG_LEVEL: "warn",
    };
    const cli = (...args: string[]) =>
      run(sentryCli, args, { cwd: work, env: cliEnv, timeout: 60_000 });
    await cli("sourcemaps", "inject", "public/assets");
    await cli("sourcemaps", "upload", "--release", RELEASE, "--wait", "public/assets");
    shop = await serveDirectory(join(work, "public"));
    chromium = await launchChromium();
    browser = chromium.browser;
  });

  afterAll(async () => {
    await chromium?.close();
    shop?.server.close();
    await t?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("shows the minified browser error with its original names, resolves it, and reopens it on regression", async () => {
    await breakCheckout(1);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();

    // Without a session: the sign-in page, then back to the page asked for.
    await page.goto(`${t.url}/organizations/sluice/issues/`);
    await page.waitForURL(/\/auth\/login\/\?next=/);
    await page.getByLabel("Email").fill("owner@example.com");
    await page.getByLabel("Password").fill(PASSWORD);
    await shot(page, "00-sign-in");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${t.url}/organizations/sluice/issues/`);
    expect(await page.getByRole("searchbox", { name: "Search" }).inputValue()).toBe(
      "is:unresolved",
    );
    await shot(page, "01-issue-list");
    const title = page.getByRole("link", { name: /^TypeError: / });
    expect(await title.count()).toBe(1);
    // Tag search: browser.name comes from the real browser's User-Agent (as Relay reads it).
    const searchFor = async (query: string) => {
      await page.getByRole("searchbox", { name: "Search" }).fill(query);
      await page.getByRole("searchbox", { name: "Search" }).press("Enter");
      await page.waitForURL((u) => u.searchParams.get("query") === query);
    };
    await searchFor("is:unresolved browser.name:Firefox");
    expect(await title.count()).toBe(0);
    await searchFor("is:unresolved browser.name:HeadlessChrome environment:production");
    expect(await title.count()).toBe(1);

    await title.click();
    await page.waitForURL(/\/issues\/\d+\/$/);
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toContain("TypeError");
    const trace = page.getByRole("list", { name: "Stack trace, most recent call first" });
    await trace.getByText("applyDiscount", { exact: true }).waitFor();
    await trace.getByText(/^src\/cart\.js:\d+:\d+$/).waitFor();
    await page.getByText("const rate = cart.discount.rate;").waitFor();
    await shot(page, "02-issue-page");
    const frame = trace.getByRole("listitem").filter({ hasText: "applyDiscount" }).first();
    await frame.getByText("Minified location").click();
    await frame.getByText(/assets\/app\.min\.js:\d+:\d+$/).waitFor();
    await shot(page, "03-minified-location");

    await page.getByRole("button", { name: "Resolve", exact: true }).click();
    await page.getByRole("button", { name: "Unresolve" }).waitFor();
    const issues = (await (
      await api(t, "/api/0/projects/sluice/default/issues/?query=")
    ).json()) as {
      id: string;
      status: string;
    }[];
    expect(issues.map((i) => i.status)).toEqual(["resolved"]);
    await shot(page, "04-resolved");

    await breakCheckout(2);
    await page.reload();
    await page.getByRole("button", { name: "Resolve", exact: true }).waitFor();
    expect(await page.getByRole("button", { name: "Unresolve" }).count()).toBe(0);
    const after = (await (await api(t, `/api/0/issues/${issues[0]?.id}/`)).json()) as {
      status: string;
    };
    expect(after.status).toBe("unresolved");
    await page.getByRole("link", { name: "Older" }).click();
    await page.getByRole("link", { name: "Newer" }).waitFor();

    await page.goto(`${t.url}/organizations/sluice/releases/`);
    await page.getByRole("link", { name: RELEASE }).click();
    await page.getByRole("table", { name: "Artifact files" }).waitFor();
    await shot(page, "05-release");

    await page.goto(`${t.url}/settings/sluice/projects/default/`);
    expect(await page.getByRole("textbox", { name: "DSN" }).inputValue()).toBe(t.dsn);
    await shot(page, "06-project-settings");

    await page.goto(`${t.url}/organizations/sluice/issues/999999/`);
    await page.getByRole("heading", { name: "Page not found" }).waitFor();
    await shot(page, "07-not-found");

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/auth\/login\/$/);
    await page.goto(`${t.url}/organizations/sluice/issues/${issues[0]?.id}/`);
    await page.waitForURL(/\/auth\/login\/\?next=/);
    await context.close();

    // A member whose team holds only "backend": no trace of the shop's issue.
    const memberContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const memberPage = await memberContext.newPage();
    await memberPage.goto(`${t.url}/auth/login/`);
    await memberPage.getByLabel("Email").fill("member@example.com");
    await memberPage.getByLabel("Password").fill(PASSWORD);
    await memberPage.getByRole("button", { name: "Sign in" }).click();
    await memberPage.waitForURL(`${t.url}/organizations/sluice/issues/`);
    await memberPage.getByRole("heading", { name: "No issues in backend yet" }).waitFor();
    expect(await memberPage.getByRole("link", { name: /^TypeError: / }).count()).toBe(0);
    expect(await memberPage.getByRole("option", { name: "default" }).count()).toBe(0);
    await shot(memberPage, "08-member-issue-list");
    const hidden = await memberPage.goto(`${t.url}/organizations/sluice/issues/${issues[0]?.id}/`);
    expect(hidden?.status()).toBe(404);
    await memberPage.getByRole("heading", { name: "Page not found" }).waitFor();
    await memberContext.close();
  });
});
