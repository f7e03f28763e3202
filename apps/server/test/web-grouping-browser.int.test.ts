import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUPING_RULES_TTL_MS } from "../src/worker/grouping-rules-cache.ts";
import { createTestUser } from "./accounts-harness.ts";
import { launchChromium } from "./chromium.ts";
import { api, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

/**
 * Issues #12 and #13 in a real browser (Debian's Chromium through
 * playwright-core), elements found by role and accessible name only: an
 * admin writes a fingerprint rule (a bad one first, whose error shows by
 * its field) and the next events group by it; merges two issues from the
 * list and unmerges one back from the issue's merged page; sets a key's
 * rate limit, which the API then reports. A member sees the rules
 * read-only. Screenshots go to `.web-screenshots/` (ignored by git).
 */

const root = new URL("../../../", import.meta.url).pathname;
const shots = join(root, ".web-screenshots");
const PASSWORD = "correct horse battery";

describe("grouping and rate limit settings in a real browser", () => {
  let t: TestSluice;
  let browser: Browser;
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  /** Sends error events through ingest and waits until they are grouped; returns their issue ids. */
  async function send(events: { type: string; value: string }[]): Promise<string[]> {
    const ids = events.map(() => crypto.randomUUID().replaceAll("-", ""));
    for (const [i, { type, value }] of events.entries()) {
      const body = { event_id: ids[i], exception: { values: [{ type, value }] } };
      const res = await fetch(`${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`, {
        method: "POST",
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
    }
    const grouped = async () =>
      (
        await t.sql.query(
          "SELECT event_id::text AS e, issue_id::text AS i FROM events WHERE event_id = ANY($1::uuid[]) AND processed_at IS NOT NULL",
          [ids],
        )
      ).rows as { e: string; i: string }[];
    await waitFor(async () => (await grouped()).length === ids.length, 20_000, "events grouped");
    const issueOf = new Map((await grouped()).map((r) => [r.e.replaceAll("-", ""), r.i]));
    return ids.map((id) => issueOf.get(id as string) as string);
  }

  async function signIn(email: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${t.url}/settings/sluice/projects/default/`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${t.url}/settings/sluice/projects/default/`);
    return page;
  }

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    t = await startTestSluice({ redis: false });
    await createTestUser(t, "admin@example.com", "sluice", "admin", PASSWORD);
    await createTestUser(t, "member@example.com", "sluice", "member", PASSWORD);
    chromium = await launchChromium();
    browser = chromium.browser;
  }, 60_000);

  afterAll(async () => {
    await chromium?.close();
    await t?.stop();
  });

  it("writes a fingerprint rule, merges and unmerges, sets a key's rate limit", async () => {
    const page = await signIn("admin@example.com");
    const spike = page.getByRole("region", { name: "Spike protection" });
    expect(await spike.getByText("Not active").count()).toBe(1);
    await shot(page, "g0-project-settings");

    await page.getByRole("link", { name: "Issue grouping" }).first().click();
    await page.waitForURL(/\/issue-grouping\/$/);
    const rules = page.getByRole("textbox", { name: "Fingerprint rules" });
    await rules.fill("type:ValueError -> value-errors\nthis is not a rule");
    await page.getByRole("button", { name: "Save grouping rules" }).click();
    const problem = page.getByRole("region", { name: "Fingerprint rules" }).getByRole("alert");
    expect(await problem.textContent()).toContain("(line 2)");
    expect(await rules.getAttribute("aria-invalid")).toBe("true");
    expect(await rules.inputValue()).toContain("this is not a rule");
    await shot(page, "g1-grouping-error");

    await rules.fill('type:ValueError -> value-errors title="Bad values"');
    await page.getByRole("button", { name: "Save grouping rules" }).click();
    await page.getByRole("status").filter({ hasText: "Grouping rules saved." }).waitFor();
    await shot(page, "g2-grouping-saved");
    await new Promise((r) => setTimeout(r, GROUPING_RULES_TTL_MS + 200));
    const grouped = await send([
      { type: "ValueError", value: "bad value 1" },
      { type: "ValueError", value: "bad value 2" },
    ]);
    expect(new Set(grouped).size).toBe(1);

    // Merge two issues from the list.
    await send([
      { type: "FirstError", value: "one" },
      { type: "SecondError", value: "two" },
    ]);
    await page.goto(`${t.url}/organizations/sluice/issues/`);
    expect(await page.getByRole("link", { name: "Bad values" }).count()).toBe(1);
    await page.getByRole("checkbox", { name: "Select FirstError: one" }).check();
    await page.getByRole("checkbox", { name: "Select SecondError: two" }).check();
    await shot(page, "g3-issue-list-selected");
    await page.getByRole("button", { name: "Merge selected" }).click();
    await page.getByRole("status").filter({ hasText: "Merged 1 issue into this one" }).waitFor();
    await shot(page, "g4-merged-issue");
    await page.getByRole("link", { name: "Merged issues" }).click();
    const hashes = page.getByRole("table", { name: "Fingerprint hashes" });
    expect(await hashes.getByRole("row").count()).toBe(3);
    await shot(page, "g5-merged-hashes");
    await hashes
      .getByRole("button", { name: /^Unmerge / })
      .first()
      .click();
    await page.getByRole("status").filter({ hasText: "Unmerged into a new issue" }).waitFor();
    expect(await hashes.getByRole("row").count()).toBe(2);
    await shot(page, "g6-unmerged");
    await page.getByRole("link", { name: "the unmerged issue" }).click();
    await page.waitForURL(/\/issues\/\d+\/$/);
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toMatch(
      /^(FirstError: one|SecondError: two)$/,
    );

    // A key's rate limit.
    await page.goto(`${t.url}/settings/sluice/projects/default/`);
    await page.getByRole("link", { name: "Client keys and their rate limits" }).click();
    const form = page.getByRole("form", { name: "Rate limit of Default" });
    await form.getByRole("spinbutton", { name: "Events" }).fill("100");
    await form.getByRole("spinbutton", { name: "Window (seconds)" }).fill("60");
    await form.getByRole("button", { name: "Save rate limit of Default" }).click();
    await page
      .getByRole("status")
      .filter({ hasText: "Rate limit of key Default saved." })
      .waitFor();
    await shot(page, "g7-key-rate-limit");
    const keys = (await (await api(t, "/api/0/projects/sluice/default/keys/")).json()) as {
      rateLimit: unknown;
    }[];
    expect(keys[0]?.rateLimit).toEqual({ window: 60, count: 100 });
  });

  it("shows a member the rules read-only and no rate limit form", async () => {
    const page = await signIn("member@example.com");
    await page.goto(`${t.url}/settings/sluice/projects/default/issue-grouping/`);
    const rules = page.getByRole("textbox", { name: "Fingerprint rules" });
    expect(await rules.inputValue()).toContain("value-errors");
    expect(await rules.isEditable()).toBe(false);
    expect(await page.getByRole("button", { name: "Save grouping rules" }).count()).toBe(0);
    await shot(page, "g8-member-grouping");
    await page.goto(`${t.url}/settings/sluice/projects/default/keys/`);
    expect(await page.getByRole("form", { name: "Rate limit of Default" }).count()).toBe(0);
  });
});
