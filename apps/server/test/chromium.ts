import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** Chromium's flags for CI: headless, no sandbox (root in a container), nothing phoning home. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Launches Debian's Chromium (`/usr/bin/chromium`) through playwright-core
 * with its own profile directory; `close` ends it and removes the profile.
 */
export async function launchChromium(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const userDataDir = mkdtempSync(join(tmpdir(), "sluice-chromium-"));
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    ignoreDefaultArgs: true,
    args: [
      ...CHROMIUM_FLAGS,
      `--user-data-dir=${userDataDir}`,
      "--remote-debugging-pipe",
      "--no-startup-window",
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
