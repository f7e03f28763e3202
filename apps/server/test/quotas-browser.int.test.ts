import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, startTestSluice, type TestSluice } from "./harness.ts";

/** What the page's script puts on `window` (clients/browser-rate-limited.mjs). */
type PageGlobals = {
  sluiceSend(kind: string, name: string): Promise<void>;
  sluiceAnswers: string[];
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const client = new URL("./clients/browser-rate-limited.mjs", import.meta.url).pathname;

// Needs a Chromium (Debian's `chromium` package); skipped where there is none.
describe.skipIf(!existsSync(CHROMIUM))("a real @sentry/browser in Chromium", () => {
  let t: TestSluice;
  let browser: Browser;
  let page: Server;
  let pageUrl: string;
  beforeAll(async () => {
    t = await startTestSluice();
    const bundle = await build({
      entryPoints: [client],
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      logLevel: "silent",
    });
    const script = bundle.outputFiles[0]?.text ?? "";
    // The page comes from its own origin, so every ingest request is a CORS request.
    page = createServer((_, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(
        `<!doctype html><script>window.SLUICE_DSN = ${JSON.stringify(t.dsn)};</script><script>${script}</script>`,
      );
    });
    await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
    pageUrl = `http://localhost:${(page.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    page?.close();
    await t?.stop();
  });

  it("stops sending the limited category until Retry-After has passed and keeps sending others", async () => {
    const created = await api(t, "/api/0/projects/sluice/default/quotas/", {
      method: "POST",
      body: JSON.stringify({ categories: ["error", "default"], limit: 1, window: 5 }),
    });
    expect(created.status).toBe(201);
    const tab = await browser.newPage();
    await tab.goto(pageUrl);
    const send = (kind: string, name: string) =>
      tab.evaluate(
        ([k, n]) => (globalThis as unknown as PageGlobals).sluiceSend(k as string, n as string),
        [kind, name],
      );
    // The quota counts in fixed 5 s windows, shifted by the organization's id
    // (quota-model.ts `windowSlot`): A, B and C go early in one window, so
    // that B and C never fall into the next.
    const { rows } = await t.sql.query(
      "SELECT organization_id FROM projects WHERE slug = 'default'",
    );
    const shift = Number(rows[0].organization_id) % 5;
    while ((Math.floor(Date.now() / 1000) + shift) % 5 > 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await send("error", "A");
    await send("error", "B");
    await send("error", "C");
    await send("feedback", "F1");
    await new Promise((r) => setTimeout(r, 6_000));
    await send("error", "D");
    const answers = await tab.evaluate(() => (globalThis as unknown as PageGlobals).sluiceAnswers);
    expect(answers).toEqual([
      "error A 200",
      "error B 429",
      "error C dropped",
      "feedback F1 200",
      "error D 200",
    ]);
    const messages = await t.sql.query(
      "SELECT payload->>'message' AS m FROM events ORDER BY received_at",
    );
    expect(messages.rows.map((r) => r.m)).toEqual(["A", "D"]);
  }, 60_000);
});
