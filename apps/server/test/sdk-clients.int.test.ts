import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

const run = promisify(execFile);
const clients = new URL("./clients/", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";

type IssueJson = { id: string; title: string; count: string; userCount: number; shortId: string };

async function issuesByTitle(t: TestSluice): Promise<Map<string, IssueJson[]>> {
  const response = await api(t, "/api/0/projects/sluice/default/issues/?query=");
  expect(response.status).toBe(200);
  const byTitle = new Map<string, IssueJson[]>();
  for (const issue of (await response.json()) as IssueJson[]) {
    byTitle.set(issue.title, [...(byTitle.get(issue.title) ?? []), issue]);
  }
  return byTitle;
}

describe("real @sentry/node SDK", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice();
    await run(process.execPath, [`${clients}node-client.mjs`, t.dsn], { timeout: 30_000 });
    await waitFor(
      async () =>
        (await countRows(t.sql, "events")) === 13 &&
        (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      20_000,
      "13 events stored and processed",
    );
  });
  afterAll(async () => t?.stop());

  it("groups the same thrown error five times into one issue seen five times", async () => {
    const issues = (await issuesByTitle(t)).get("Error: same error every time");
    expect(issues).toHaveLength(1);
    expect(issues?.[0]?.count).toBe("5");
    expect(issues?.[0]?.userCount).toBe(2);
  });

  it("makes two issues of one error thrown at two sites", async () => {
    expect((await issuesByTitle(t)).get("Error: thrown at two sites")).toHaveLength(2);
  });

  it("groups captureMessage calls whose numbers differ", async () => {
    const titles = [...(await issuesByTitle(t)).entries()].filter(([title]) =>
      /^order \d+ failed$/.test(title),
    );
    expect(titles).toHaveLength(1);
    expect(titles[0]?.[1][0]?.count).toBe("3");
  });

  it("lets a custom fingerprint win over the default grouping", async () => {
    const byTitle = await issuesByTitle(t);
    const one =
      byTitle.get("Error: fingerprinted one") ?? byTitle.get("TypeError: fingerprinted two");
    expect(one).toHaveLength(1);
    expect(one?.[0]?.count).toBe("2");
  });

  it("stores an attachment in the blob store, linked to its event", async () => {
    const rows = await t.sql.query("SELECT event_id, filename, size, blob_key FROM attachments");
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0].filename).toBe("note.txt");
    const blob = await t.services.blobs.get(rows.rows[0].blob_key);
    expect(blob?.toString()).toBe("hello attachment");
    const event = await t.sql.query("SELECT 1 FROM events WHERE event_id = $1", [
      rows.rows[0].event_id,
    ]);
    expect(event.rowCount).toBe(1);
  });
});

describe("real sentry-python SDK (Debian python3-sentry-sdk)", () => {
  let t: TestSluice;
  beforeAll(async () => {
    if (!existsSync(PYTHON))
      throw new Error(`${PYTHON} is missing; .ci/run installs python3-sentry-sdk`);
    t = await startTestSluice();
    await run(PYTHON, [`${clients}python_client.py`, t.dsn], { timeout: 30_000 });
    await waitFor(async () => (await countRows(t.sql, "issues")) >= 2, 20_000, "python issues");
  });
  afterAll(async () => t?.stop());

  it("turns a gzipped /store/ exception into an issue", async () => {
    const byTitle = await issuesByTitle(t);
    const issue = byTitle.get("ZeroDivisionError: division by zero");
    expect(issue).toHaveLength(1);
    const events = await api(t, `/api/0/issues/${issue?.[0]?.id}/events/latest/`);
    const event = (await events.json()) as { platform: string; entries: { type: string }[] };
    expect(event.platform).toBe("python");
    expect(event.entries.map((e) => e.type)).toContain("exception");
  });

  it("groups messages by their parameterized text", async () => {
    const titles = [...(await issuesByTitle(t)).keys()].filter((title) =>
      title.startsWith("payment "),
    );
    expect(titles).toHaveLength(1);
  });
});
