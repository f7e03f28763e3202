import { createApiToken } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiToken, newApiToken } from "../src/accounts/auth-tokens.ts";
import { BULK_MUTATION_LIMIT } from "../src/api/issue-bulk-routes.ts";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { GROUPING_RULES_TTL_MS } from "../src/worker/grouping-rules-cache.ts";
import { api, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

type IssueJson = { id: string; title: string; count: string; status: string };

/**
 * Issue #12's controls through the real API, ingest and worker: project
 * grouping rules, bulk status and merge, hashes and unmerge.
 */
describe("grouping controls: project rules, merge, unmerge", () => {
  let t: TestSluice;
  let other: { projectId: number; publicKey: string };
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    const made = await createProjectWithKey(t.services, "elsewhere", "theirs");
    other = { projectId: made.project.id, publicKey: new URL(made.dsn).username };
  });
  afterAll(async () => t?.stop());

  /** Sends events through ingest and waits until the worker grouped them; returns their issue ids. */
  async function send(
    events: object[],
    target = { projectId: t.projectId, publicKey: t.publicKey },
  ): Promise<string[]> {
    const url = `${t.url}/api/${target.projectId}/store/?sentry_key=${target.publicKey}`;
    const ids: string[] = [];
    for (const event of events) {
      const eventId = crypto.randomUUID().replaceAll("-", "");
      const res = await fetch(url, {
        method: "POST",
        body: JSON.stringify({ event_id: eventId, ...event }),
      });
      expect(res.status).toBe(200);
      ids.push(eventId);
    }
    await waitFor(
      async () =>
        (
          await t.sql.query(
            "SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[]) AND processed_at IS NOT NULL",
            [ids],
          )
        ).rows[0].n === ids.length,
      20_000,
      "events grouped",
    );
    const rows = await t.sql.query(
      "SELECT event_id::text AS e, issue_id::text AS i FROM events WHERE event_id = ANY($1::uuid[])",
      [ids],
    );
    const issueOf = new Map(rows.rows.map((r) => [r.e.replaceAll("-", ""), r.i as string]));
    return ids.map((id) => issueOf.get(id) as string);
  }

  const error = (type: string, value: string) => ({
    exception: { values: [{ type, value }] },
  });

  async function json<T>(res: Response | Promise<Response>): Promise<T> {
    return (await (await res).json()) as T;
  }

  it("a PUT of a fingerprint rule changes how the next events group, and GET shows it", async () => {
    const before = await send([
      error("QuotaError", "over quota for alice"),
      error("QuotaError", "rate limited bob"),
    ]);
    expect(new Set(before).size).toBe(2);

    const put = await api(t, "/api/0/projects/sluice/default/", {
      method: "PUT",
      body: JSON.stringify({
        fingerprintingRules: 'type:QuotaError -> quota-errors title="Quota exceeded"',
        name: "ignored by Sluice",
      }),
    });
    expect(put.status).toBe(200);
    const project = await json<Record<string, unknown>>(put);
    expect(project).toMatchObject({
      slug: "default",
      fingerprintingRules: 'type:QuotaError -> quota-errors title="Quota exceeded"',
      groupingEnhancements: "",
    });
    expect(await json(api(t, "/api/0/projects/sluice/default/"))).toMatchObject({
      fingerprintingRules: project.fingerprintingRules,
    });

    // Every worker picks the new rules up within the cache's TTL.
    await new Promise((r) => setTimeout(r, GROUPING_RULES_TTL_MS + 200));
    const after = await send([
      error("QuotaError", "over quota for carol"),
      error("QuotaError", "no more for dave"),
    ]);
    expect(new Set(after).size).toBe(1);
    expect(before).not.toContain(after[0]);
    const issue = await json<IssueJson>(api(t, `/api/0/issues/${after[0]}/`));
    expect(issue).toMatchObject({ title: "Quota exceeded", count: "2" });

    // Clearing the rules groups by default again.
    await api(t, "/api/0/projects/sluice/default/", {
      method: "PUT",
      body: JSON.stringify({ fingerprintingRules: "" }),
    });
  });

  it("refuses rules that do not parse, oversize text and fixed settings, field by field", async () => {
    const put = (body: object, token = t.token) =>
      fetch(`${t.url}/api/0/projects/sluice/default/`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    const bad = await put({
      fingerprintingRules: "type:Foo -> x\nthis is not a rule",
      groupingEnhancements: "function:foo +nonsense",
    });
    expect(bad.status).toBe(400);
    const errors = await json<Record<string, string[]>>(bad);
    expect(Object.keys(errors).sort()).toEqual(["fingerprintingRules", "groupingEnhancements"]);
    expect(errors.fingerprintingRules?.[0]).toMatch(
      /^Invalid syntax near "this is not a rule" \(line 2\)/,
    );
    expect(errors.groupingEnhancements?.[0]).toMatch(/^Invalid syntax near .*\(line 1\)/);

    const huge = await put({ groupingEnhancements: `# ${"x".repeat(70_000)}` });
    expect(huge.status).toBe(400);
    expect(await huge.json()).toEqual({
      groupingEnhancements: ["Ensure this field has no more than 65536 characters."],
    });
    expect(await json(put({ groupingConfig: "newstyle:2023-01-11" }))).toEqual({
      groupingConfig: ["Grouping config cannot be manually set."],
    });
    expect((await put({ fingerprintingRules: 5 })).status).toBe(400);

    const readOnly = newApiToken();
    await createApiToken(t.services.db.orm, hashApiToken(readOnly), ["project:read"], "ro");
    expect((await put({ fingerprintingRules: "" }, readOnly)).status).toBe(403);
    expect((await put({ fingerprintingRules: "" })).status).toBe(200);
    // Nothing refused was stored.
    expect(await json(api(t, "/api/0/projects/sluice/default/"))).toMatchObject({
      fingerprintingRules: "",
      groupingEnhancements: "",
    });
  });

  it("answers the project's grouping config transition as Sentry's project does", async () => {
    // Created under the current config: no transition.
    expect(await json(api(t, "/api/0/projects/sluice/default/"))).toMatchObject({
      groupingConfig: "sluice:2026-12",
      secondaryGroupingConfig: null,
      secondaryGroupingExpiry: 0,
    });
    const until = Math.floor(Date.now() / 1000) + 3600;
    await t.sql.query(
      "UPDATE projects SET secondary_grouping_expiry = to_timestamp($2) WHERE id = $1",
      [t.projectId, until],
    );
    try {
      expect(await json(api(t, "/api/0/projects/sluice/default/"))).toMatchObject({
        secondaryGroupingConfig: "legacy",
        secondaryGroupingExpiry: until,
      });
    } finally {
      await t.sql.query("UPDATE projects SET secondary_grouping_expiry = NULL WHERE id = $1", [
        t.projectId,
      ]);
    }
  });

  it("merges issues: Sentry's parent, combined counts, later events of every hash, redirects", async () => {
    const [a] = await send([error("MergeA", "a"), error("MergeA", "a"), error("MergeA", "a")]);
    const [b] = await send([error("MergeB", "b")]);
    const [c] = await send([error("MergeC", "c"), error("MergeC", "c")]);
    const [foreign] = await send([error("MergeA", "a")], other);
    const res = await api(
      t,
      `/api/0/projects/sluice/default/issues/?id=${b}&id=${c}&id=${a}&id=${foreign}`,
      { method: "PUT", body: JSON.stringify({ merge: 1 }) },
    );
    expect(res.status).toBe(200);
    // Sentry's parent: the most times seen; children by times seen, descending.
    expect(await res.json()).toEqual({ merge: { parent: a, children: [c, b] } });

    const list = await json<IssueJson[]>(api(t, "/api/0/projects/sluice/default/issues/?query="));
    const ids = list.map((i) => i.id);
    expect(ids).toContain(a);
    expect(ids).not.toContain(b);
    expect(ids).not.toContain(c);
    expect(list.find((i) => i.id === a)?.count).toBe("6");
    // A merged issue's id answers the issue it was merged into (Sentry's GroupRedirect).
    expect(await json<IssueJson>(api(t, `/api/0/issues/${b}/`))).toMatchObject({ id: a });
    expect(await json<IssueJson>(api(t, `/api/0/organizations/sluice/issues/${c}/`))).toMatchObject(
      { id: a },
    );

    expect(await send([error("MergeB", "b"), error("MergeC", "c")])).toEqual([a, a]);
    expect(await json<IssueJson>(api(t, `/api/0/issues/${a}/`))).toMatchObject({ count: "8" });
    const events = await json<unknown[]>(api(t, `/api/0/issues/${a}/events/`));
    expect(events).toHaveLength(8);

    // The other organization's issue was never touched.
    const untouched = await t.sql.query(
      "SELECT times_seen::int, merged_into_id FROM issues WHERE id = $1",
      [foreign],
    );
    expect(untouched.rows).toEqual([{ times_seen: 1, merged_into_id: null }]);
  });

  it("updates status in bulk for the listed issues of the path's project or organization only", async () => {
    const [x, y] = await send([error("BulkX", "x"), error("BulkY", "y")]);
    const [theirs] = await send([error("BulkX", "x")], other);
    const resolve = await api(
      t,
      `/api/0/projects/sluice/default/issues/?id=${x}&id=${y}&id=${theirs}`,
      { method: "PUT", body: JSON.stringify({ status: "resolved" }) },
    );
    expect(resolve.status).toBe(200);
    expect(await resolve.json()).toEqual({ status: "resolved", statusDetails: {}, inbox: null });
    const status = async (id: string | undefined) =>
      (await t.sql.query("SELECT status FROM issues WHERE id = $1", [id])).rows[0].status;
    expect([await status(x), await status(y), await status(theirs)]).toEqual([
      "resolved",
      "resolved",
      "unresolved",
    ]);

    const ignore = await api(t, `/api/0/organizations/sluice/issues/?id=${y}`, {
      method: "PUT",
      body: JSON.stringify({ status: "ignored" }),
    });
    expect(ignore.status).toBe(200);
    expect(await status(y)).toBe("ignored");
    // Another organization's issue through this organization's path: no issue found.
    const foreign = await api(t, `/api/0/organizations/sluice/issues/?id=${theirs}`, {
      method: "PUT",
      body: JSON.stringify({ status: "ignored" }),
    });
    expect(foreign.status).toBe(204);
    expect(await status(theirs)).toBe("unresolved");

    const many = Array.from({ length: BULK_MUTATION_LIMIT + 1 }, (_, i) => `id=${i + 1}`);
    const tooMany = await api(t, `/api/0/projects/sluice/default/issues/?${many.join("&")}`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved" }),
    });
    expect(tooMany.status).toBe(400);
    expect(
      (
        await api(t, "/api/0/projects/sluice/default/issues/?id=abc", {
          method: "PUT",
          body: JSON.stringify({ status: "resolved" }),
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await api(t, `/api/0/projects/sluice/default/issues/?id=${x}`, {
          method: "PUT",
          body: JSON.stringify({ hasSeen: true }),
        })
      ).status,
    ).toBe(400);
  });

  it("lists an issue's hashes and unmerges one back out to a new issue that takes its later events", async () => {
    const [p] = await send([error("SplitP", "p"), error("SplitP", "p")]);
    const [q] = await send([error("SplitQ", "q")]);
    await api(t, `/api/0/projects/sluice/default/issues/?id=${p}&id=${q}`, {
      method: "PUT",
      body: JSON.stringify({ merge: true }),
    });
    const hashes = await json<{ id: string; latestEvent: { groupID: string } | null }[]>(
      api(t, `/api/0/issues/${p}/hashes/`),
    );
    const owned = await t.sql.query("SELECT hash FROM issue_hashes WHERE issue_id = $1", [p]);
    expect(hashes.map((h) => h.id).sort()).toEqual(owned.rows.map((r) => r.hash).sort());
    expect(hashes.filter((h) => h.latestEvent !== null)).toHaveLength(2);
    expect(hashes.every((h) => h.latestEvent === null || h.latestEvent.groupID === p)).toBe(true);

    const primary = (
      await t.sql.query(
        `SELECT DISTINCT e.primary_hash FROM events e
          WHERE e.issue_id = $1 AND e.payload->'exception'->'values'->0->>'type' = 'SplitQ'`,
        [p],
      )
    ).rows.map((r) => r.primary_hash as string);
    expect(primary).toHaveLength(1);
    const unmerge = await api(t, `/api/0/issues/${p}/hashes/?id=${primary[0]}`, {
      method: "PUT",
    });
    expect(unmerge.status).toBe(202);
    const [later] = await send([error("SplitQ", "q")]);
    expect(later).not.toBe(p);
    expect(later).not.toBe(q);
    const split = await json<IssueJson>(api(t, `/api/0/issues/${later}/`));
    expect(split).toMatchObject({ title: "SplitQ: q", count: "2" });
    expect(await json<IssueJson>(api(t, `/api/0/issues/${p}/`))).toMatchObject({ count: "2" });
    const again = await api(t, `/api/0/issues/${p}/hashes/?id=${primary[0]}`, { method: "PUT" });
    expect(again.status).toBe(409);
    // Another organization's path never reaches this issue; bad hashes are refused unread.
    expect((await api(t, `/api/0/organizations/elsewhere/issues/${p}/hashes/`)).status).toBe(404);
    expect(
      (await api(t, `/api/0/organizations/elsewhere/issues/${p}/hashes/?id=x`, { method: "PUT" }))
        .status,
    ).toBe(404);
    expect(
      (await api(t, `/api/0/issues/${p}/hashes/?id=${"%00".repeat(3)}`, { method: "PUT" })).status,
    ).toBe(400);
  });

  it("never splits an issue when a merge runs while the worker groups its events", async () => {
    const [m] = await send([error("RaceM", "m"), error("RaceM", "m")]);
    const [n] = await send([error("RaceN", "n")]);
    const url = `${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`;
    const sent: string[] = [];
    const sending = (async () => {
      for (let i = 0; i < 60; i++) {
        const eventId = crypto.randomUUID().replaceAll("-", "");
        sent.push(eventId);
        await fetch(url, {
          method: "POST",
          body: JSON.stringify({
            event_id: eventId,
            ...error(i % 2 ? "RaceM" : "RaceN", i % 2 ? "m" : "n"),
          }),
        });
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const merged = await api(t, `/api/0/projects/sluice/default/issues/?id=${m}&id=${n}`, {
      method: "PUT",
      body: JSON.stringify({ merge: 1 }),
    });
    expect(merged.status).toBe(200);
    const { parent } = ((await merged.json()) as { merge: { parent: string } }).merge;
    expect([m, n]).toContain(parent);
    await sending;
    await waitFor(
      async () =>
        (
          await t.sql.query(
            "SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[]) AND processed_at IS NOT NULL",
            [sent],
          )
        ).rows[0].n === sent.length,
      20_000,
      "race events grouped",
    );
    const where = await t.sql.query(
      "SELECT DISTINCT issue_id::text AS i FROM events WHERE event_id = ANY($1::uuid[])",
      [sent],
    );
    expect(where.rows).toEqual([{ i: parent }]);
    expect(await json<IssueJson>(api(t, `/api/0/issues/${parent}/`))).toMatchObject({
      count: "63",
    });
  });
});
