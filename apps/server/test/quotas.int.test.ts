import { randomUUID } from "node:crypto";
import { createApiToken } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiToken, newApiToken } from "../src/accounts/auth-tokens.ts";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

const hex = () => randomUUID().replaceAll("-", "");

/** An envelope with an event (and, optionally, an attachment and a session). */
function envelope(options: { attachment?: boolean; session?: boolean; event?: boolean } = {}) {
  const id = hex();
  const lines = [JSON.stringify({ event_id: id })];
  if (options.event !== false) {
    lines.push(JSON.stringify({ type: "event" }), JSON.stringify({ message: "hi" }));
  }
  if (options.attachment) {
    lines.push(JSON.stringify({ type: "attachment", length: 5, filename: "a.txt" }), "hello");
  }
  if (options.session) {
    lines.push(JSON.stringify({ type: "session" }), JSON.stringify({ sid: hex(), status: "ok" }));
  }
  return { id, body: `${lines.join("\n")}\n` };
}

async function send(t: TestSluice, body: string, key = t.publicKey, projectId = t.projectId) {
  return fetch(`${t.url}/api/${projectId}/envelope/?sentry_key=${key}&sentry_version=7`, {
    method: "POST",
    body,
  });
}

async function outcomes(t: TestSluice) {
  const rows = await t.sql.query(
    "SELECT outcome, category, reason, sum(quantity)::int AS n FROM outcomes GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
  );
  return rows.rows as { outcome: string; category: string; reason: string; n: number }[];
}

describe("rate limits that SDKs understand", () => {
  let t: TestSluice;
  beforeAll(async () => {
    // No Redis: the in-process counters (the same rules as the Redis script).
    t = await startTestSluice({ redis: false });
  });
  afterAll(async () => t?.stop());

  it("sets, shows and clears a key's rate limit through Sentry's key API", async () => {
    const path = `/api/0/projects/sluice/default/keys/${t.publicKey}/`;
    const put = await api(t, path, {
      method: "PUT",
      body: JSON.stringify({ rateLimit: { window: 60, count: 3 }, name: "Checkout" }),
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({
      id: t.publicKey,
      name: "Checkout",
      rateLimit: { window: 60, count: 3 },
    });
    const listed = (await (await api(t, "/api/0/projects/sluice/default/keys/")).json()) as {
      rateLimit: unknown;
    }[];
    expect(listed[0]?.rateLimit).toEqual({ window: 60, count: 3 });
    expect(((await (await api(t, path)).json()) as { rateLimit: unknown }).rateLimit).toEqual({
      window: 60,
      count: 3,
    });
    const bad = await api(t, path, {
      method: "PUT",
      body: JSON.stringify({ rateLimit: { window: 90_000, count: 1 } }),
    });
    expect(bad.status).toBe(400);
    expect((await api(t, `/api/0/projects/sluice/default/keys/${"0".repeat(32)}/`)).status).toBe(
      404,
    );
    const cleared = await api(t, path, {
      method: "PUT",
      body: JSON.stringify({ rateLimit: null }),
    });
    expect(((await cleared.json()) as { rateLimit: unknown }).rateLimit).toBeNull();
  });

  it("answers 429 with Retry-After and X-Sentry-Rate-Limits past the key limit, counts rate_limited outcomes, and keeps other categories", async () => {
    const { rows } = await t.sql.query("SELECT id FROM project_keys WHERE public_key = $1", [
      t.publicKey,
    ]);
    // Directly in the row, then a fresh key: the key cache would hold the old limit 10 s.
    await t.sql.query(
      "UPDATE project_keys SET rate_limit_count = 2, rate_limit_window = 60 WHERE id = $1",
      [rows[0].id],
    );
    const other = await t.sql.query(
      "INSERT INTO project_keys (project_id, public_key, rate_limit_count, rate_limit_window) VALUES ($1, $2, 2, 60) RETURNING public_key",
      [t.projectId, hex()],
    );
    const key = other.rows[0].public_key as string;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await send(t, envelope().body, key));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 429, 429]);
    const limited = answers[2] as Response;
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers.get("x-sentry-rate-limits")).toMatch(
      /^\d+:default;error;security:key:key_quota$/,
    );
    // An envelope with an event and a session: the session is stored, the event refused, 200.
    const mixed = await send(t, envelope({ session: true, attachment: true }).body, key);
    expect(mixed.status).toBe(200);
    expect(mixed.headers.get("x-sentry-rate-limits")).toMatch(/:key:key_quota$/);
    await waitFor(
      async () =>
        (await outcomes(t)).some(
          (o) => o.outcome === "rate_limited" && o.category === "error" && o.n === 3,
        ),
      5_000,
      "rate_limited outcomes",
    );
    const all = await outcomes(t);
    expect(all).toContainEqual({
      outcome: "rate_limited",
      category: "error",
      reason: "key_quota",
      n: 3,
    });
    // The attachment went with its event (Relay's EnvelopeLimiter).
    expect(all).toContainEqual({
      outcome: "rate_limited",
      category: "attachment_item",
      reason: "key_quota",
      n: 1,
    });
    expect(all).toContainEqual({ outcome: "accepted", category: "session", reason: "", n: 1 });
  });

  it("refuses everything under a quota of 0, reads project quotas from the API, and serves stats_v2", async () => {
    // A project ingest has not seen yet, so it reads the quota at its first request.
    const { project, dsn } = await createProjectWithKey(t.services, "sluice", "checkout");
    const created = await api(t, "/api/0/projects/sluice/checkout/quotas/", {
      method: "POST",
      body: JSON.stringify({ categories: ["transaction"], limit: 0, window: 3600 }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      scope: "project",
      project: "checkout",
      categories: ["transaction"],
      limit: 0,
      window: 3600,
      reasonCode: "project_quota",
    });
    const tx = JSON.stringify({ event_id: hex() });
    const body = `${tx}\n${JSON.stringify({ type: "transaction" })}\n${JSON.stringify({ type: "transaction" })}\n`;
    const refused = await send(t, body, new URL(dsn).username, project.id);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(refused.headers.get("x-sentry-rate-limits")).toBe(
      "60:transaction:project:project_quota",
    );

    const token = newApiToken();
    await createApiToken(t.services.db.orm, hashApiToken(token), ["org:read"], "stats");
    await waitFor(
      async () => (await countRows(t.sql, "outcomes", "category = 'transaction'")) > 0,
      5_000,
      "transaction outcome",
    );
    const stats = await fetch(
      `${t.url}/api/0/organizations/sluice/stats_v2/?field=sum(quantity)&groupBy=outcome&groupBy=category&statsPeriod=1d&interval=1h`,
      { headers: { Authorization: `Bearer ${token}` } },
    );
    expect(stats.status).toBe(200);
    const json = (await stats.json()) as {
      intervals: string[];
      groups: { by: Record<string, string>; totals: Record<string, number> }[];
    };
    expect(json.intervals.length).toBeGreaterThanOrEqual(24);
    const group = json.groups.find(
      (g) => g.by.outcome === "rate_limited" && g.by.category === "transaction",
    );
    expect(group?.totals["sum(quantity)"]).toBe(1);
    const bad = await fetch(`${t.url}/api/0/organizations/sluice/stats_v2/?field=count()`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(bad.status).toBe(400);
  });

  it("reads client reports into client_discard, rate_limited and filtered outcomes", async () => {
    const report = {
      discarded_events: [{ reason: "ratelimit_backoff", category: "replay", quantity: 4 }],
      rate_limited_events: [{ reason: "key_quota", category: "replay", quantity: 2 }],
      filtered_events: [{ reason: "release-version", category: "replay", quantity: 1 }],
    };
    const body = `{}\n${JSON.stringify({ type: "client_report" })}\n${JSON.stringify(report)}\n`;
    expect((await send(t, body)).status).toBe(200);
    const replay = (await outcomes(t)).filter((o) => o.category === "replay");
    expect(replay).toEqual([
      { outcome: "client_discard", category: "replay", reason: "ratelimit_backoff", n: 4 },
      { outcome: "filtered", category: "replay", reason: "release-version", n: 1 },
      { outcome: "rate_limited", category: "replay", reason: "key_quota", n: 2 },
    ]);
  });
});
