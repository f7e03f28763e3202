import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

type IssueJson = {
  id: string;
  title: string;
  status: string;
  count: string;
  project: { slug: string };
};

describe("the Sentry REST API", () => {
  let t: TestSluice;
  let eventId: string;
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    const url = `${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`;
    for (let i = 0; i < 5; i++) {
      eventId = crypto.randomUUID().replaceAll("-", "");
      const event = {
        event_id: eventId,
        exception: { values: [{ type: `Failure${i}`, value: "it broke" }] },
        tags: { shard: `${i}` },
      };
      expect((await fetch(url, { method: "POST", body: JSON.stringify(event) })).status).toBe(200);
    }
    await waitFor(async () => (await countRows(t.sql, "issues")) === 5, 20_000, "five issues");
  });
  afterAll(async () => t?.stop());

  it("refuses requests without a valid token", async () => {
    const none = await fetch(`${t.url}/api/0/organizations/`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ detail: "Authentication credentials were not provided." });
    const bad = await fetch(`${t.url}/api/0/organizations/`, {
      headers: { Authorization: "Bearer sntryu_nope" },
    });
    expect(bad.status).toBe(401);
  });

  it("lists organizations and projects", async () => {
    const orgs = await api(t, "/api/0/organizations/");
    expect(orgs.headers.get("content-type")).toContain("application/json");
    expect(
      ((await orgs.json()) as { slug: string; id: string }[]).map((o) => [o.slug, typeof o.id]),
    ).toEqual([["sluice", "string"]]);
    const projects = (await (await api(t, "/api/0/organizations/sluice/projects/")).json()) as {
      slug: string;
    }[];
    expect(projects.map((p) => p.slug)).toEqual(["default"]);
  });

  it("pages issues with Sentry's Link header", async () => {
    const first = await api(t, "/api/0/projects/sluice/default/issues/?per_page=2");
    const link = first.headers.get("link") ?? "";
    expect(link).toMatch(/rel="previous"; results="false"; cursor="0:0:1"/);
    expect(link).toMatch(/rel="next"; results="true"; cursor="0:2:0"/);
    const seen = new Set<string>();
    let next: string | null = `/api/0/projects/sluice/default/issues/?per_page=2`;
    while (next) {
      const page = await api(t, next);
      for (const issue of (await page.json()) as IssueJson[]) seen.add(issue.id);
      const m = /<([^>]+)>; rel="next"; results="true"/.exec(page.headers.get("link") ?? "");
      next = m ? new URL(m[1] as string).pathname + new URL(m[1] as string).search : null;
    }
    expect(seen.size).toBe(5);
  });

  it("resolves an issue, filters by status, and reads it under the organization too", async () => {
    const [issue] = (await (
      await api(t, "/api/0/projects/sluice/default/issues/")
    ).json()) as IssueJson[];
    const put = await api(t, `/api/0/issues/${issue?.id}/`, {
      method: "PUT",
      body: JSON.stringify({ status: "resolved" }),
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as IssueJson).status).toBe("resolved");
    const unresolved = (await (
      await api(t, "/api/0/projects/sluice/default/issues/")
    ).json()) as IssueJson[];
    expect(unresolved).toHaveLength(4);
    const resolved = (await (
      await api(t, "/api/0/projects/sluice/default/issues/?query=is:resolved")
    ).json()) as IssueJson[];
    expect(resolved.map((i) => i.id)).toEqual([issue?.id]);
    const scoped = await api(t, `/api/0/organizations/sluice/issues/${issue?.id}/`);
    expect(((await scoped.json()) as IssueJson).status).toBe("resolved");
    const bad = await api(t, `/api/0/issues/${issue?.id}/`, {
      method: "PUT",
      body: JSON.stringify({ status: "gone" }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toHaveProperty("detail");
  });

  it("serves an issue's events and an event by id", async () => {
    const byId = await api(t, `/api/0/projects/sluice/default/events/${eventId}/`);
    expect(byId.status).toBe(200);
    const event = (await byId.json()) as {
      eventID: string;
      groupID: string;
      tags: { key: string; value: string }[];
    };
    expect(event.eventID).toBe(eventId);
    expect(event.tags).toContainEqual({ key: "shard", value: "4" });
    const events = await api(t, `/api/0/issues/${event.groupID}/events/`);
    expect(((await events.json()) as { eventID: string }[]).map((e) => e.eventID)).toEqual([
      eventId,
    ]);
    const latest = await api(t, `/api/0/issues/${event.groupID}/events/latest/`);
    expect(((await latest.json()) as { eventID: string }).eventID).toBe(eventId);
  });

  it("answers 404 with a detail for what does not exist", async () => {
    for (const path of [
      "/api/0/issues/999999/",
      "/api/0/projects/sluice/nope/issues/",
      `/api/0/projects/sluice/default/events/${"0".repeat(32)}/`,
    ]) {
      const response = await api(t, path);
      expect(response.status, path).toBe(404);
      expect(await response.json()).toHaveProperty("detail");
    }
    // Outside /api/0/ no token is asked for: what is not served is a 404.
    for (const path of ["/favicon.ico", "/metrics"]) {
      const response = await fetch(`${t.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(await response.json()).toEqual({ detail: "not found" });
    }
    // A page asks for a session, not a token: it sends the browser to sign in.
    const page = await fetch(`${t.url}/organizations/sluice/issues/`, { redirect: "manual" });
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toMatch(/^\/auth\/login\/\?next=/);
  });

  it("exposes health and readiness, and Prometheus metrics on the metrics port only", async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${t.url}/metrics`)).status).toBe(404);
    expect(new URL(t.metricsUrl).port).not.toBe(new URL(t.url).port);
    const scraped = await fetch(`${t.metricsUrl}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get("content-type")).toContain("text/plain");
    const metrics = await scraped.text();
    expect(metrics).toMatch(/sluice_ingest_items_total\{item_type="event",outcome="accepted"\} 5/);
    expect(metrics).toContain("sluice_group_commit_duration_seconds_bucket");
    expect(metrics).toContain("sluice_queue_depth");
    expect(metrics).toMatch(
      /sluice_http_requests_total\{method="POST",route="\/api\/:projectId\{\[1-9\]\[0-9\]\*\}\/store",status="200"\} 5/,
    );
  });

  // Last: it adds an issue and events the tests above count.
  it("serves an issue's oldest and latest event after retention removed its first", async () => {
    const url = `${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`;
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = crypto.randomUUID().replaceAll("-", "");
      sent.push(id);
      const event = { event_id: id, exception: { values: [{ type: "Repeated", value: "again" }] } };
      expect((await fetch(url, { method: "POST", body: JSON.stringify(event) })).status).toBe(200);
    }
    const stored = async () =>
      (
        await t.sql.query(
          `SELECT replace(event_id::text, '-', '') AS id, issue_id FROM events
            WHERE event_id = ANY($1::uuid[]) AND issue_id IS NOT NULL
            ORDER BY received_at, event_id`,
          [sent],
        )
      ).rows as { id: string; issue_id: string }[];
    await waitFor(async () => (await stored()).length === 3, 20_000, "three grouped events");
    const [first, second, third] = await stored();
    // What dropping the first one's day partition does: the issue still counts it.
    await t.sql.query("DELETE FROM events WHERE event_id = $1::uuid", [first?.id]);
    const issue = (await (await api(t, `/api/0/issues/${second?.issue_id}/`)).json()) as IssueJson;
    expect(issue.count).toBe("3");
    const oldest = await api(t, `/api/0/issues/${second?.issue_id}/events/oldest/`);
    expect(oldest.status).toBe(200);
    expect(((await oldest.json()) as { eventID: string }).eventID).toBe(second?.id);
    const latest = await api(t, `/api/0/issues/${second?.issue_id}/events/latest/`);
    expect(((await latest.json()) as { eventID: string }).eventID).toBe(third?.id);
  });
});
