import { gzipSync } from "node:zlib";
import { findProjectKey, insertIngestBatch, setProjectKeyActive } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCaptures } from "./fixtures.ts";
import { countRows, startTestSluice, type TestSluice } from "./harness.ts";

const eventId = () => crypto.randomUUID().replaceAll("-", "");

function envelope(id: string, event: object = { message: "hello" }): string {
  return `{"event_id":"${id}"}\n{"type":"event"}\n${JSON.stringify({ event_id: id, ...event })}\n`;
}

describe("ingest", () => {
  let t: TestSluice;
  let envelopeUrl: string;
  beforeAll(async () => {
    t = await startTestSluice();
    envelopeUrl = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}&sentry_version=7`;
  });
  afterAll(async () => t?.stop());

  it("answers every real SDK capture with 200 and stores each event and attachment", async () => {
    const captures = readCaptures();
    let expectedEvents = 0;
    for (const capture of captures) {
      const query = new URLSearchParams(capture.query);
      if (query.has("sentry_key")) query.set("sentry_key", t.publicKey);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(capture.headers)) {
        if (["host", "content-length", "transfer-encoding", "connection"].includes(name)) continue;
        headers[name] =
          name === "x-sentry-auth"
            ? value.replace(/sentry_key=[^,]+/, `sentry_key=${t.publicKey}`)
            : value;
      }
      const encoded =
        capture.headers["content-encoding"] === "gzip" ? gzipSync(capture.body) : capture.body;
      const chunked = capture.headers["transfer-encoding"] === "chunked";
      const path = capture.path.replace(/^\/api\/\d+\//, `/api/${t.projectId}/`);
      const response = await fetch(`${t.url}${path}?${query}`, {
        method: capture.method,
        headers,
        body: chunked ? new Blob([encoded]).stream() : encoded,
        ...(chunked ? { duplex: "half" } : {}),
      } as RequestInit);
      expect(
        response.status,
        `${capture.file} #${capture.seq}: ${await response.clone().text()}`,
      ).toBe(200);
      const isEvent =
        capture.path.includes("/store/") ||
        capture.envelope?.items.some((i) => i.header.type === "event");
      if (isEvent) expectedEvents++;
    }
    expect(await countRows(t.sql, "events")).toBe(expectedEvents);
    expect(await countRows(t.sql, "attachments")).toBe(4);
    const sessions = await t.sql.query(
      "SELECT sum(quantity)::int AS n FROM outcomes WHERE category = 'session'",
    );
    expect(sessions.rows[0].n).toBeGreaterThan(0);
    const discards = await t.sql.query(
      "SELECT reason FROM outcomes WHERE outcome = 'client_discard'",
    );
    expect(discards.rows.map((r) => r.reason)).toContain("before_send");
  });

  it("accepts the key in X-Sentry-Auth, Authorization: Sentry and the envelope dsn header", async () => {
    const url = `${t.url}/api/${t.projectId}/envelope/`;
    const auth = `Sentry sentry_key=${t.publicKey}, sentry_version=7, sentry_client=test/1.0`;
    const viaHeader = await fetch(url, {
      method: "POST",
      headers: { "X-Sentry-Auth": auth },
      body: envelope(eventId()),
    });
    expect(viaHeader.status).toBe(200);
    const viaAuthorization = await fetch(url, {
      method: "POST",
      headers: { Authorization: auth },
      body: envelope(eventId()),
    });
    expect(viaAuthorization.status).toBe(200);
    const id = eventId();
    const tunnel = `{"event_id":"${id}","dsn":"${t.dsn}"}\n{"type":"event"}\n{"message":"tunneled"}\n`;
    const viaDsn = await fetch(url, { method: "POST", body: tunnel });
    expect(viaDsn.status).toBe(200);
    expect(await viaDsn.json()).toEqual({ id });
  });

  it("accepts dashed event ids and answers with the plain form", async () => {
    const dashed = crypto.randomUUID();
    const response = await fetch(envelopeUrl, { method: "POST", body: envelope(dashed) });
    expect(await response.json()).toEqual({ id: dashed.replaceAll("-", "") });
  });

  it("puts the CORS headers on preflights, successes and errors", async () => {
    const preflight = await fetch(envelopeUrl, { method: "OPTIONS" });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("x-sentry-auth");
    const ok = await fetch(envelopeUrl, { method: "POST", body: envelope(eventId()) });
    expect(ok.headers.get("access-control-expose-headers")).toBe(
      "x-sentry-error, x-sentry-rate-limits, retry-after",
    );
    const denied = await fetch(`${t.url}/api/${t.projectId}/envelope/`, {
      method: "POST",
      body: "{}\n",
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe("*");
    expect(denied.headers.get("x-sentry-error")).toBe("missing authorization information");
  });

  it("stores one event when the same event_id arrives twenty times at once", async () => {
    const id = eventId();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => fetch(envelopeUrl, { method: "POST", body: envelope(id) })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);
    const again = await fetch(envelopeUrl, { method: "POST", body: envelope(id) });
    expect(again.status).toBe(200);
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);
  });

  it("shares one insert among concurrent requests (group commit)", async () => {
    const before = await t.services.metrics.groupCommitEvents.get();
    const count = (m: typeof before) =>
      m.values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
    const ids = Array.from({ length: 40 }, eventId);
    const answers = await Promise.all(
      ids.map((id) => fetch(envelopeUrl, { method: "POST", body: envelope(id) })),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const batches = count(await t.services.metrics.groupCommitEvents.get()) - count(before);
    expect(batches).toBeLessThan(40);
    expect(
      await countRows(t.sql, "events", `event_id IN (${ids.map((i) => `'${i}'`).join(",")})`),
    ).toBe(40);
  });

  it("keeps one event per (project, event_id) across a day boundary", async () => {
    const id = eventId();
    const row = (receivedAt: Date) => ({
      projectId: t.projectId,
      eventId: id,
      receivedAt,
      timestamp: receivedAt,
      keyId: 1,
      payloadText: "{}",
    });
    const day1 = new Date("2026-01-01T23:59:59.900Z");
    const day2 = new Date("2026-01-02T00:00:00.100Z");
    const first = await insertIngestBatch(t.services.db.pool, {
      events: [row(day1)],
      attachments: [],
      outcomes: [],
    });
    const second = await insertIngestBatch(t.services.db.pool, {
      events: [row(day2)],
      attachments: [],
      outcomes: [],
    });
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(0);
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);
  });
});

describe("ingest rejects bad input with a 4xx and stores nothing", () => {
  let t: TestSluice;
  let url: string;
  beforeAll(async () => {
    t = await startTestSluice({
      redis: false,
      env: {
        SLUICE_MAX_EVENT_BYTES: String(64 * 1024),
        SLUICE_MAX_ENVELOPE_BYTES: String(1024 * 1024),
      },
    });
    url = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
  });
  afterAll(async () => {
    expect(await countRows(t.sql, "events")).toBe(0);
    expect(await countRows(t.sql, "event_ids")).toBe(0);
    expect(await countRows(t.sql, "attachments")).toBe(0);
    expect(await countRows(t.sql, "outcomes")).toBe(0);
    await t?.stop();
  });

  const post = (body: string | Buffer, headers: Record<string, string> = {}, target?: string) =>
    fetch(target ?? url, { method: "POST", headers, body });

  async function expectRejected(response: Response, status: number, detail: RegExp) {
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toContain("application/json");
    const body = (await response.json()) as { detail: string };
    expect(body.detail).toMatch(detail);
  }

  it("rejects a malformed envelope header", async () => {
    await expectRejected(await post("not json\n{}\n"), 400, /envelope header/);
  });

  it("rejects an item that declares more bytes than the envelope has", async () => {
    await expectRejected(
      await post(`{}\n{"type":"event","length":500}\n{"message":"x"}\n`),
      400,
      /declares 500 bytes/,
    );
  });

  it("rejects an item whose payload is longer than its length", async () => {
    await expectRejected(
      await post(`{}\n{"type":"event","length":3}\n{"message":"x"}\n`),
      400,
      /longer than its declared length/,
    );
  });

  it("rejects a body that is not valid gzip", async () => {
    await expectRejected(
      await post(Buffer.from("definitely not gzip"), { "Content-Encoding": "gzip" }),
      400,
      /gzip/,
    );
  });

  it("answers 413 to a gzip bomb without inflating it all", async () => {
    const bomb = gzipSync(
      Buffer.concat([Buffer.from('{}\n{"type":"attachment"}\n'), Buffer.alloc(64 * 1024 * 1024)]),
    );
    await expectRejected(
      await post(bomb, { "Content-Encoding": "gzip" }),
      413,
      /larger than 1048576 bytes/,
    );
  });

  it("answers 413 to an event item over the event size limit, naming it", async () => {
    const big = JSON.stringify({ message: "x".repeat(70 * 1024) });
    await expectRejected(
      await post(`{}\n{"type":"event"}\n${big}\n`),
      413,
      /^event item is larger/,
    );
  });

  it("answers 413 to an oversize /store/ body", async () => {
    const store = `${t.url}/api/${t.projectId}/store/?sentry_key=${t.publicKey}`;
    await expectRejected(
      await post(JSON.stringify({ message: "x".repeat(70 * 1024) }), {}, store),
      413,
      /larger than/,
    );
  });

  it("rejects an event that is not JSON, or nests too deep", async () => {
    await expectRejected(
      await post(`{}\n{"type":"event"}\n{"message": nope}\n`),
      400,
      /invalid JSON/,
    );
    const deep = `${"[".repeat(200)}${"]".repeat(200)}`;
    await expectRejected(
      await post(`{}\n{"type":"event"}\n{"extra":${deep}}\n`),
      400,
      /nesting deeper/,
    );
  });

  it("rejects an invalid event id", async () => {
    await expectRejected(
      await post(`{"event_id":"not-an-id"}\n{"type":"event"}\n{}\n`),
      400,
      /event_id/,
    );
  });

  it("rejects an unknown key, a disabled key and a key of another project", async () => {
    const body = `{}\n{"type":"event"}\n{"message":"x"}\n`;
    const unknown = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${"0".repeat(32)}`;
    await expectRejected(await post(body, {}, unknown), 401, /unknown DSN key/);
    const other = `${t.url}/api/${t.projectId + 1}/envelope/?sentry_key=${t.publicKey}`;
    await expectRejected(await post(body, {}, other), 403, /does not belong/);
    const tooNew = `${url}&sentry_version=8`;
    await expectRejected(await post(body, {}, tooNew), 400, /unsupported protocol version/);
    const both = await post(body, { "X-Sentry-Auth": `Sentry sentry_key=${t.publicKey}` });
    await expectRejected(both, 401, /multiple authorization payloads/);
  });

  it("answers 403 once a key is disabled", async () => {
    const key = await findProjectKey(t.services.db.orm, t.publicKey);
    await setProjectKeyActive(t.services.db.orm, key?.id as number, false);
    const fresh = await startTestSluice({
      databaseUrl: t.config.databaseUrl as string,
      redis: false,
    });
    try {
      const target = `${fresh.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
      await expectRejected(await post(`{}\n{"type":"event"}\n{}\n`, {}, target), 403, /disabled/);
    } finally {
      await fresh.stop();
      await setProjectKeyActive(t.services.db.orm, key?.id as number, true);
    }
  });
});
