import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGzip, gzipSync } from "node:zlib";
import { createTestDatabase, type TestDatabase } from "@sluice/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyCache } from "../src/ingest/key-cache.ts";
import { countRows, startTestSluice, type TestSluice } from "./harness.ts";
import { createDefaultProject, type NodeProcess, startNode, type Version } from "./processes.ts";

const eventId = () => crypto.randomUUID().replaceAll("-", "");

/** Gzips `prefix` then `count` bytes of `fill`, a chunk at a time (the bomb itself is never in memory). */
async function gzipBomb(prefix: string, fill: string, count: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on("data", (chunk: Buffer) => out.push(chunk));
  const done = new Promise((resolve) => gzip.on("end", resolve));
  gzip.write(prefix);
  const chunk = Buffer.alloc(1024 * 1024, fill);
  for (let left = count; left > 0; left -= chunk.length) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    if (!gzip.write(piece)) await new Promise((resolve) => gzip.once("drain", resolve));
  }
  gzip.end();
  await done;
  return Buffer.concat(out);
}

/** Times `/healthz` every 20 ms until `until` settles; returns the slowest answer (ms). */
async function slowestHealthz(url: string, until: Promise<unknown>): Promise<number> {
  await (await fetch(`${url}/healthz`)).text();
  let settled = false;
  until.finally(() => {
    settled = true;
  });
  let worst = 0;
  do {
    const started = performance.now();
    const response = await fetch(`${url}/healthz`);
    await response.text();
    worst = Math.max(worst, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 20));
  } while (!settled);
  return worst;
}

function blobFiles(t: TestSluice): string[] {
  const root = join(t.config.dataDir, "blobs");
  try {
    return readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

async function metricValues(
  t: TestSluice,
  name: "ingestItems" | "keyCacheLookups" | "ingestShed",
): Promise<{ labels: Record<string, string | number | undefined>; value: number }[]> {
  const metric = await t.services.metrics[name].get();
  return metric.values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
}

describe("ingest hardening: hostile input is refused fast, with nothing else lost", () => {
  let t: TestSluice;
  let url: string;
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    url = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
  });
  afterAll(async () => t?.stop());

  const post = (body: string | Buffer, headers: Record<string, string> = {}, target = url) =>
    fetch(target, { method: "POST", headers, body });

  it("answers a gzipped 200 MB envelope header of '[' with 400 in well under a second, without a key", async () => {
    const bomb = await gzipBomb("", "[", 200_000_000);
    expect(bomb.length).toBeLessThan(300_000);
    const started = performance.now();
    const answer = post(
      bomb,
      { "Content-Encoding": "gzip" },
      `${t.url}/api/${t.projectId}/envelope/`,
    );
    const worstHealthz = await slowestHealthz(t.url, answer);
    const response = await answer;
    const elapsed = performance.now() - started;
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/longer than/);
    expect(elapsed).toBeLessThan(500);
    expect(worstHealthz).toBeLessThan(150);
  });

  it("answers the same bomb in an item header with 400 as fast, and /healthz answers meanwhile", async () => {
    const bomb = await gzipBomb("{}\n", "[", 200_000_000);
    const started = performance.now();
    const answer = post(bomb, { "Content-Encoding": "gzip" });
    const worstHealthz = await slowestHealthz(t.url, answer);
    const response = await answer;
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toMatch(
      /item header at byte 3 is longer than/,
    );
    expect(performance.now() - started).toBeLessThan(500);
    expect(worstHealthz).toBeLessThan(150);
  });

  it("bounds a client_report before parsing it", async () => {
    const deep = `{"discarded_events":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}`;
    const id = eventId();
    const started = performance.now();
    const response = await post(
      `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"kept"}\n{"type":"client_report"}\n${deep}\n`,
    );
    expect(performance.now() - started).toBeLessThan(300);
    expect(response.status).toBe(200);
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);
  });

  it("refuses a key that is not 32 hex characters before any lookup, and caches none", async () => {
    const before = await metricValues(t, "keyCacheLookups");
    const count = (values: typeof before, result: string) =>
      values.find((v) => v.labels.result === result)?.value ?? 0;
    for (let i = 0; i < 5; i++) {
      const fake = `${i}${"a".repeat(60 * 1024)}`;
      const response = await post(
        `{"dsn":"http://${fake}@localhost/${t.projectId}"}\n{"type":"event"}\n{}\n`,
        {},
        `${t.url}/api/${t.projectId}/envelope/`,
      );
      expect(response.status).toBe(401);
      const viaQuery = await post(
        `{}\n{"type":"event"}\n{}\n`,
        {},
        `${t.url}/api/${t.projectId}/envelope/?sentry_key=${fake.slice(0, 2000)}`,
      );
      expect(viaQuery.status).toBe(401);
    }
    const after = await metricValues(t, "keyCacheLookups");
    expect(count(after, "invalid") - count(before, "invalid")).toBe(10);
    expect(count(after, "miss")).toBe(count(before, "miss"));
  });

  it("keeps at most its maximum of key lookups, known or unknown", async () => {
    const keys = createKeyCache(t.services.db.orm, { maxEntries: 5 });
    for (let i = 0; i < 50; i++) {
      expect(await keys.lookup(i.toString(16).padStart(32, "0"))).toBeNull();
    }
    expect(await keys.lookup(t.publicKey)).toMatchObject({ projectId: t.projectId });
    expect(keys.size()).toBeLessThanOrEqual(5);
  });

  it("counts unknown item types as `unknown` in metrics, never as new label values", async () => {
    const items = Array.from({ length: 30 }, (_, i) => `{"type":"junk_${i}"}\n{}\n`).join("");
    const response = await post(`{}\n${items}`);
    expect(response.status).toBe(200);
    const labels = (await metricValues(t, "ingestItems")).map((v) => String(v.labels.item_type));
    expect(labels.some((label) => label.startsWith("junk_"))).toBe(false);
    expect(labels).toContain("unknown");
  });

  it("treats item types named like Object.prototype members as unknown and keeps the event", async () => {
    const filtered = async () =>
      (
        await t.sql.query(
          "SELECT category, sum(quantity)::int AS n FROM outcomes WHERE outcome = 'filtered' GROUP BY category",
        )
      ).rows;
    const before = await filtered();
    const id = eventId();
    const odd = ["constructor", "toString", "__proto__", "hasOwnProperty"]
      .map((type) => `{"type":"${type}"}\n{}\n`)
      .join("");
    const response = await post(`{"event_id":"${id}"}\n{"type":"event"}\n{"message":"x"}\n${odd}`);
    expect(response.status).toBe(200);
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);
    const after = await filtered();
    expect(after).toEqual([{ category: "unknown", n: (before[0]?.n ?? 0) + 4 }]);
  });

  it("quotes client input in X-Sentry-Error only as printable ASCII", async () => {
    const response = await post(`{}\n{"type":"a\\r\\nb\u{1F600}","length":-1}\n`);
    expect(response.status).toBe(400);
    expect(response.headers.get("x-sentry-error")).toBe("invalid length in a??b?? item header");
    expect(((await response.json()) as { detail: string }).detail).toBe(
      "invalid length in a\r\nb\u{1F600} item header",
    );
  });

  it("answers an empty envelope 400, with or without a key", async () => {
    for (const target of [url, `${t.url}/api/${t.projectId}/envelope/`]) {
      const response = await post("", {}, target);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { detail: string }).detail).toBe("empty envelope");
    }
  });

  it("answers 401, not 503, to a DSN with broken percent-encoding", async () => {
    const response = await post(
      `{"dsn":"http://%E0%A4%A@x/1"}\n{"type":"event"}\n{}\n`,
      {},
      `${t.url}/api/${t.projectId}/envelope/`,
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("retry-after")).toBeNull();
  });

  it("saturates client report quantities, and a full counter never fails an event", async () => {
    const report = JSON.stringify({
      timestamp: Date.now() / 1000,
      discarded_events: [{ reason: "queue_overflow", category: "error", quantity: 2 ** 63 - 1 }],
    });
    for (let i = 0; i < 2; i++) {
      const response = await post(`{}\n{"type":"client_report"}\n${report}\n`);
      expect(response.status).toBe(200);
    }
    const id = eventId();
    const response = await post(
      `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"after"}\n{"type":"client_report"}\n${report}\n`,
    );
    expect(response.status).toBe(200);
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);
    const counter = await t.sql.query(
      "SELECT quantity::text AS q FROM outcomes WHERE outcome = 'client_discard' AND reason = 'queue_overflow'",
    );
    expect(BigInt(counter.rows[0].q)).toBeGreaterThan(0n);
    expect(BigInt(counter.rows[0].q)).toBeLessThanOrEqual(2n ** 63n - 1n);
  });

  it("stores the same attachment bytes sent by many requests at once", async () => {
    const bytes = `same bytes ${eventId()}`;
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        post(
          `{"event_id":"${eventId()}"}\n{"type":"event"}\n{}\n{"type":"attachment","filename":"same.txt"}\n${bytes}\n`,
        ),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
  });

  it("writes no blob for an attachment it refuses", async () => {
    const before = blobFiles(t);
    for (const header of [
      '{"type":"attachment","filename":"a\\u0000b.txt"}',
      '{"type":"attachment","filename":"ok.txt","content_type":{"x":1}}',
      `{"type":"attachment","filename":"${"n".repeat(5000)}"}`,
      '{"type":"attachment","filename":"ok.txt","attachment_type":"x\\u0000"}',
    ]) {
      const id = eventId();
      const response = await post(
        `{"event_id":"${id}"}\n{"type":"event"}\n{}\n${header}\n${eventId()}-unique-bytes\n`,
      );
      expect(response.status).toBe(400);
      expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(0);
    }
    expect(blobFiles(t)).toEqual(before);
  });
});

describe("ingest hardening: bytes in flight are bounded per process", () => {
  let t: TestSluice;
  let url: string;
  beforeAll(async () => {
    t = await startTestSluice({
      redis: false,
      env: { SLUICE_MAX_BYTES_IN_FLIGHT: String(1024 * 1024) },
    });
    url = `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
  });
  afterAll(async () => t?.stop());

  it("answers 503 with Retry-After past the bound without reading the body, then recovers", async () => {
    const shedBefore = (await metricValues(t, "ingestShed"))[0]?.value ?? 0;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const id = eventId();
    const attachment = Buffer.alloc(700 * 1024, "a");
    const head = Buffer.from(
      `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"slow"}\n{"type":"attachment","length":${attachment.length},"filename":"a.txt"}\n`,
    );
    const slowBody = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(head);
        controller.enqueue(attachment.subarray(0, 600 * 1024));
        await held;
        controller.enqueue(attachment.subarray(600 * 1024));
        controller.enqueue(Buffer.from("\n"));
        controller.close();
      },
    });
    const slow = fetch(url, { method: "POST", body: slowBody, duplex: "half" } as RequestInit);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const big = Buffer.concat([
      Buffer.from(`{}\n{"type":"attachment","length":${600 * 1024},"filename":"b.txt"}\n`),
      Buffer.alloc(600 * 1024, "b"),
      Buffer.from("\n"),
    ]);
    const shed = await Promise.all(
      Array.from({ length: 3 }, () => fetch(url, { method: "POST", body: big })),
    );
    for (const response of shed) {
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBeTruthy();
      expect(((await response.json()) as { detail: string }).detail).toMatch(/in flight/);
    }
    release();
    expect((await slow).status).toBe(200);
    expect(await countRows(t.sql, "events", `event_id = '${id}'`)).toBe(1);

    const small = eventId();
    const after = await fetch(url, {
      method: "POST",
      body: `{"event_id":"${small}"}\n{"type":"event"}\n{"message":"small"}\n`,
    });
    expect(after.status).toBe(200);
    expect((await metricValues(t, "ingestShed"))[0]?.value ?? 0).toBe(shedBefore + 3);
    const shedOutcomes = await t.sql.query(
      "SELECT sum(quantity)::int AS n FROM outcomes WHERE outcome = 'invalid' AND reason = 'internal'",
    );
    expect(shedOutcomes.rows[0].n).toBe(3);
    expect((await t.services.metrics.ingestBytesInFlight.get()).values[0]?.value ?? 0).toBe(0);
  });

  it("charges a declared Content-Length only as its bytes arrive, so slow senders hold little", async () => {
    const target = new URL(url);
    const socket = connect(Number(target.port), target.hostname);
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(
      `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Length: ${900 * 1024}\r\n\r\n{}\n`,
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const body = Buffer.concat([
        Buffer.from(`{}\n{"type":"attachment","length":${600 * 1024}}\n`),
        Buffer.alloc(600 * 1024, "c"),
      ]);
      const response = await fetch(url, { method: "POST", body });
      expect(response.status).toBe(200);
    } finally {
      socket.destroy();
    }
  });

  it("sheds a compressed body whose decoded bytes pass the bound while it is read", async () => {
    const bomb = gzipSync(
      Buffer.concat([
        Buffer.from(`{}\n{"type":"attachment","length":${4 * 1024 * 1024}}\n`),
        Buffer.alloc(4 * 1024 * 1024),
      ]),
    );
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Encoding": "gzip" },
      body: bomb,
    });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBeTruthy();
    expect((await t.services.metrics.ingestBytesInFlight.get()).values[0]?.value ?? 0).toBe(0);
  });
});

/** Resident set size of a process (bytes), from /proc. */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

describe("ingest hardening: a sluice serve process under concurrent bombs", () => {
  const MiB = 1024 * 1024;
  const children: ChildProcess[] = [];
  let db: TestDatabase;
  let dataDir: string;
  let node: NodeProcess;
  let key: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), "sluice-hardening-"));
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: "",
      SLUICE_DATA_DIR: dataDir,
      SLUICE_MAX_BYTES_IN_FLIGHT: String(64 * MiB),
    };
    const current: Version = {
      label: "current",
      root: new URL("../../../", import.meta.url).pathname,
    };
    node = await startNode(current, "all", env, children);
    key = new URL(await createDefaultProject(current, env)).username;
  }, 120_000);
  afterAll(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    await db?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps RSS near its byte budget and /healthz fast while bombs are refused", async () => {
    const base = `http://127.0.0.1:${node.port}`;
    const pid = node.child.pid as number;
    const withKey = await gzipBomb('{}\n{"type":"attachment"}\n', "\0", 150 * MiB);
    const headerBomb = await gzipBomb("", "[", 150 * MiB);
    const before = rssOf(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 20);
    const answers = Promise.all([
      ...Array.from({ length: 6 }, () =>
        fetch(`${base}/api/1/envelope/?sentry_key=${key}`, {
          method: "POST",
          headers: { "Content-Encoding": "gzip" },
          body: withKey,
        }),
      ),
      ...Array.from({ length: 3 }, () =>
        fetch(`${base}/api/1/envelope/`, {
          method: "POST",
          headers: { "Content-Encoding": "gzip" },
          body: headerBomb,
        }),
      ),
    ]);
    const worstHealthz = await slowestHealthz(base, answers);
    clearInterval(sampler);
    const statuses = (await answers).map((r) => r.status);
    console.info(
      `9 bombs: statuses ${statuses.join(",")}, RSS +${((peak - before) / MiB).toFixed(0)} MiB, worst /healthz ${worstHealthz.toFixed(0)} ms`,
    );
    // Nine bombs of 150 MiB: without the budget the process held them all at once.
    expect(peak - before).toBeLessThan(200 * MiB);
    expect(statuses.slice(0, 6).every((s) => s === 503 || s === 413)).toBe(true);
    expect(statuses.slice(0, 6)).toContain(503);
    expect(statuses.slice(6)).toEqual([400, 400, 400]);
    expect(worstHealthz).toBeLessThan(200);
    // Refused before their end: each connection closes with its answer, so the next request never queues behind a bomb's rest.
    expect((await answers).map((r) => r.headers.get("connection"))).toEqual(Array(9).fill("close"));
    const ok = await fetch(`${base}/api/1/envelope/?sentry_key=${key}`, {
      method: "POST",
      body: `{}\n{"type":"event"}\n{"message":"after the bombs"}\n`,
    });
    expect(ok.status).toBe(200);
  }, 60_000);
});
