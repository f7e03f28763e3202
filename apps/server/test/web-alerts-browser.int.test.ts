import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createProjectKey, ensureProject, findOrganization } from "@sluice/db";
import { build } from "esbuild";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestUser } from "./accounts-harness.ts";
import { type HttpReceiver, startHttpReceiver } from "./alert-receivers.ts";
import { launchChromium } from "./chromium.ts";
import { api, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

/**
 * Alert rules and usage in a real browser (Debian's Chromium through
 * playwright-core), with every part real: the owner saves the project's
 * webhook URL and creates a rule on the pages (a bad form first: its
 * field errors), a real @sentry/browser sends an error, the test's HTTP
 * receiver gets one webhook, and the rules page then shows one delivery; a
 * member cannot create a rule; a key rate limit drops an event and the
 * usage page shows the accepted and rate-limited counts. Found by role and
 * accessible name only; screenshots go to `.web-screenshots/`.
 */

const root = new URL("../../../", import.meta.url).pathname;
const shots = join(root, ".web-screenshots");
const client = new URL("./clients/browser-rate-limited.mjs", import.meta.url).pathname;
const PASSWORD = "correct horse battery";

/** What the page's script puts on `window` (clients/browser-rate-limited.mjs). */
type PageGlobals = {
  sluiceSend(kind: string, name: string): Promise<void>;
  sluiceAnswers: string[];
};

describe("alert rules and usage in a real browser", () => {
  let t: TestSluice;
  let browser: Browser;
  let receiver: HttpReceiver;
  let app: Server;
  let appUrl: string;
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  /** Signs `email` in on a fresh browser context. */
  const signIn = async (email: string): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${t.url}/auth/login/`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${t.url}/organizations/sluice/issues/`);
    return { context, page };
  };

  /** Opens the @sentry/browser app with `dsn`, sends each message as an error, returns the SDK's answers. */
  const sendFromBrowser = async (dsn: string, messages: string[]): Promise<string[]> => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await tab.goto(`${appUrl}/?dsn=${encodeURIComponent(dsn)}`);
    for (const m of messages) {
      await tab.evaluate(
        (name) => (globalThis as unknown as PageGlobals).sluiceSend("error", name),
        m,
      );
    }
    const answers = await tab.evaluate(() => (globalThis as unknown as PageGlobals).sluiceAnswers);
    await context.close();
    return answers;
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    receiver = await startHttpReceiver();
    t = await startTestSluice({ env: { SLUICE_ALERT_TIMEOUT_MS: "5000" } });
    await createTestUser(t, "owner@example.com", "sluice", "owner", PASSWORD);
    await createTestUser(t, "member@example.com", "sluice", "member", PASSWORD);
    const bundle = await build({
      entryPoints: [client],
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      logLevel: "silent",
    });
    const script = bundle.outputFiles[0]?.text ?? "";
    // The app comes from its own origin, so the SDK's requests are CORS requests, as in production.
    app = createServer((req, res) => {
      const dsn = new URL(req.url ?? "/", "http://x").searchParams.get("dsn") ?? "";
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(
        `<!doctype html><script>window.SLUICE_DSN = ${JSON.stringify(dsn).replaceAll("<", "\\u003c")};</script><script>${script}</script>`,
      );
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    appUrl = `http://localhost:${(app.address() as AddressInfo).port}`;
    chromium = await launchChromium();
    browser = chromium.browser;
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    app?.close();
    await receiver?.close();
    await t?.stop();
  });

  it("creates a webhook rule on the pages; one error makes one delivery, which the rules page counts", async () => {
    const { context, page } = await signIn("owner@example.com");
    await page.goto(`${t.url}/settings/sluice/projects/default/plugins/webhooks/`);
    await page.getByRole("textbox", { name: "Callback URLs" }).fill(`${receiver.url}/hook`);
    await page.getByRole("button", { name: "Save webhook URLs" }).click();
    await page.getByText("The webhook URLs are saved.").waitFor();
    await shot(page, "alerts-01-webhooks");

    await page
      .getByRole("navigation", { name: "Organization" })
      .getByRole("link", { name: "Alerts" })
      .click();
    await page.getByRole("heading", { name: "Alert rules" }).waitFor();
    await page.getByRole("link", { name: "Create alert rule" }).click();
    await page.getByRole("heading", { name: "New alert rule" }).waitFor();
    // A bad form first: no name, no action.
    await page
      .getByRole("combobox", { name: "Condition 1", exact: true })
      .selectOption({ label: "A new issue is created" });
    await page.getByRole("button", { name: "Save rule" }).click();
    await page.getByRole("alert").waitFor();
    expect(
      await page.getByRole("textbox", { name: "Rule name" }).getAttribute("aria-invalid"),
    ).toBe("true");
    // Each field's own message (exact), besides the summary at the top.
    await page.getByText("This field is required.", { exact: true }).waitFor();
    await page.getByText("Must select an action", { exact: true }).waitFor();
    await shot(page, "alerts-02-field-errors");
    await page.getByRole("textbox", { name: "Rule name" }).fill("Checkout is broken");
    await page.getByRole("combobox", { name: "Project" }).selectOption("default");
    await page
      .getByRole("combobox", { name: "Action 1", exact: true })
      .selectOption({ label: "Send a notification via the project's webhooks" });
    await page.getByRole("button", { name: "Save rule" }).click();
    await page.getByRole("heading", { name: "Checkout is broken" }).waitFor();
    await page.getByText("The rule is saved.").waitFor();
    await shot(page, "alerts-03-rule-details");

    const answers = await sendFromBrowser(t.dsn, ["checkout failed"]);
    expect(answers).toEqual(["error checkout failed 200"]);
    await waitFor(async () => receiver.received.length >= 1, 30_000, "the webhook");
    expect(receiver.received[0]).toMatchObject({
      path: "/hook",
      body: { triggering_rules: ["Checkout is broken"] },
    });

    await page.getByRole("link", { name: "Alerts" }).click();
    const row = page
      .getByRole("table", { name: "Alert rules" })
      .getByRole("row")
      .filter({ hasText: "Checkout is broken" });
    await waitFor(
      async () => {
        await page.reload();
        return (await row.getByRole("cell").nth(4).textContent()) === "1 sent, 0 failed, 0 pending";
      },
      20_000,
      "the rules page shows the delivery",
    );
    expect(await row.getByRole("cell").nth(5).textContent()).toBe("none");
    expect(await row.getByRole("cell").nth(3).textContent()).not.toBe("never");
    expect(receiver.received).toHaveLength(1);
    const rules = (await (await api(t, "/api/0/projects/sluice/default/rules/")).json()) as {
      deliveries: { sent: number };
    }[];
    expect(rules[0]?.deliveries.sent).toBe(1);
    await shot(page, "alerts-04-rules-list");
    await context.close();
  });

  it("does not let a member create a rule", async () => {
    const { context, page } = await signIn("member@example.com");
    await page.getByRole("link", { name: "Alerts" }).click();
    await page
      .getByRole("table", { name: "Alert rules" })
      .getByRole("link", { name: "Checkout is broken" })
      .waitFor();
    expect(await page.getByRole("link", { name: "Create alert rule" }).count()).toBe(0);
    const answer = await page.goto(`${t.url}/organizations/sluice/alerts/new/issue/`);
    expect(answer?.status()).toBe(403);
    await page.getByText(/needs project:write/).waitFor();
    await shot(page, "alerts-05-member-refused");
    await context.close();
  });

  it("shows accepted and rate-limited errors on the usage page after a key rate limit drops one", async () => {
    const { orm } = t.services.db;
    const org = await findOrganization(orm, "sluice");
    const { project } = await ensureProject(orm, org?.id as number, "usage", "usage");
    const key = await createProjectKey(orm, project.id);
    const put = await api(t, `/api/0/projects/sluice/usage/keys/${key.publicKey}/`, {
      method: "PUT",
      body: JSON.stringify({ rateLimit: { window: 60, count: 2 } }),
    });
    expect(put.status).toBe(200);
    const dsn = `${new URL(t.url).protocol}//${key.publicKey}@${new URL(t.url).host}/${project.id}`;
    expect(await sendFromBrowser(dsn, ["A", "B", "C"])).toEqual([
      "error A 200",
      "error B 200",
      "error C 429",
    ]);

    const { context, page } = await signIn("owner@example.com");
    await page.getByRole("link", { name: "Stats" }).click();
    await page.getByRole("heading", { name: "Usage stats" }).waitFor();
    const errors = page
      .getByRole("table", { name: "Usage totals" })
      .getByRole("row", { name: /^Errors/ });
    await waitFor(
      async () => {
        await page.reload();
        return (await errors.getByRole("cell").nth(2).textContent()) === "1";
      },
      15_000,
      "the rate-limited count",
    );
    // Accepted: the rule's error and A and B; rate limited: C.
    expect(await errors.getByRole("cell").nth(0).textContent()).toBe("3");
    await page.getByRole("img", { name: "Errors: 3 accepted, 1 dropped, last 24 hours" }).waitFor();
    await shot(page, "alerts-06-usage");
    await page.getByRole("combobox", { name: "Project" }).selectOption("usage");
    await page.getByRole("combobox", { name: "Period" }).selectOption("7d");
    await page.getByRole("button", { name: "Show usage" }).click();
    await page.getByRole("img", { name: "Errors: 2 accepted, 1 dropped, last 7 days" }).waitFor();
    await shot(page, "alerts-07-usage-project-7d");
    await context.close();
  });
});
