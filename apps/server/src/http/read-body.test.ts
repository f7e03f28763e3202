import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ByteBudget } from "./byte-budget.ts";
import { decodeLegacyStoreBody, openBody, readBody } from "./read-body.ts";

const stream = (bytes: Buffer) => new Blob([bytes]).stream();

describe("readBody", () => {
  it("decodes gzip, deflate and br, and passes identity through", async () => {
    const text = Buffer.from('{"message":"hi"}');
    for (const [encoding, encoded] of [
      ["gzip", gzipSync(text)],
      ["deflate", deflateSync(text)],
      ["deflate", deflateRawSync(text)],
      ["br", brotliCompressSync(text)],
      [undefined, text],
    ] as const) {
      const result = await readBody(stream(encoded as Buffer), encoding, 1024);
      expect(result.ok && result.body.toString()).toBe(text.toString());
    }
  });

  it("stops at the limit on the wire and after decompression", async () => {
    expect(await readBody(stream(Buffer.alloc(2048)), undefined, 1024)).toMatchObject({
      ok: false,
      status: 413,
    });
    expect(
      await readBody(stream(gzipSync(Buffer.alloc(10 * 1024 * 1024))), "gzip", 1024),
    ).toMatchObject({ ok: false, status: 413 });
  });

  it("rejects corrupt data and zstd", async () => {
    expect(await readBody(stream(Buffer.from("nope")), "gzip", 1024)).toMatchObject({
      ok: false,
      status: 400,
    });
    expect(await readBody(stream(Buffer.from("x")), "zstd", 1024)).toMatchObject({
      ok: false,
      status: 415,
    });
  });
});

describe("openBody", () => {
  it("decodes only up to the first line, then the rest on demand", async () => {
    const body = gzipSync(Buffer.concat([Buffer.from('{"dsn":"x"}\n'), Buffer.alloc(5_000_000)]));
    const opened = openBody(stream(body), "gzip", 10_000_000);
    if (!opened.ok) throw new Error(opened.detail);
    const line = await opened.reader.readLine(1024);
    expect(line).toMatchObject({ ok: true, ended: false });
    expect(line.ok && line.line.toString()).toBe('{"dsn":"x"}');
    const all = await opened.reader.readAll();
    expect(all.ok && all.body.length).toBe(5_000_012);
  });

  it("stops a line that has no newline soon after its bound, without decoding the rest", async () => {
    const body = gzipSync(Buffer.alloc(100_000_000, "["));
    const started = performance.now();
    const opened = openBody(stream(body), "gzip", 200_000_000);
    if (!opened.ok) throw new Error(opened.detail);
    const line = await opened.reader.readLine(64 * 1024);
    expect(line.ok && line.line.length).toBe(64 * 1024 + 1);
    await opened.reader.cancel();
    expect(performance.now() - started).toBeLessThan(300);
  });

  it("reads a trickle of one-byte chunks in time linear in its size", async () => {
    const bytes = Buffer.concat([
      Buffer.alloc(64 * 1024, "a"),
      Buffer.from("\n"),
      Buffer.alloc(200_000),
    ]);
    let at = 0;
    const trickle = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= bytes.length) controller.close();
        else controller.enqueue(bytes.subarray(at, ++at));
      },
    });
    const started = performance.now();
    const opened = openBody(trickle, undefined, 1_000_000);
    if (!opened.ok) throw new Error(opened.detail);
    const line = await opened.reader.readLine(64 * 1024);
    expect(line.ok && line.line.length).toBe(64 * 1024);
    const all = await opened.reader.readAll();
    expect(all.ok && all.body.equals(bytes)).toBe(true);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("returns the whole body as the line when it has no newline", async () => {
    const opened = openBody(stream(Buffer.from("{}")), undefined, 1024);
    if (!opened.ok) throw new Error(opened.detail);
    expect(await opened.reader.readLine(1024)).toMatchObject({ ok: true, ended: true });
  });
});

describe("readBody with a byte budget", () => {
  it("takes wire and decoded bytes from the budget and answers 503 past it", async () => {
    const budget = new ByteBudget(1024 * 1024);
    const lease = budget.lease();
    const fits = await readBody(stream(Buffer.alloc(512 * 1024)), undefined, 10_000_000, { lease });
    expect(fits.ok).toBe(true);
    expect(budget.used).toBe(512 * 1024);
    const other = budget.lease();
    const shed = await readBody(stream(Buffer.alloc(600 * 1024)), undefined, 10_000_000, {
      lease: other,
    });
    expect(shed).toMatchObject({ ok: false, status: 503 });
    other.release();
    lease.release();
    expect(budget.used).toBe(0);
    const bomb = await readBody(stream(gzipSync(Buffer.alloc(4_000_000))), "gzip", 10_000_000, {
      lease: budget.lease(),
    });
    expect(bomb).toMatchObject({ ok: false, status: 503 });
  });
});

describe("decodeLegacyStoreBody", () => {
  it("reads base64 zlib bodies of old SDKs", async () => {
    const encoded = Buffer.from(deflateSync(Buffer.from('{"message":"old"}')).toString("base64"));
    const result = await decodeLegacyStoreBody(encoded, 1024);
    expect(result.ok && result.body.toString()).toBe('{"message":"old"}');
  });
});

describe("ByteBudget", () => {
  it("lends bytes to leases up to its capacity and takes them back on release", () => {
    const held: number[] = [];
    const budget = new ByteBudget(100, (n) => held.push(n));
    const a = budget.lease();
    const b = budget.lease();
    expect(a.reserve(60)).toBe(true);
    expect(a.reserve(50)).toBe(true);
    expect(b.wouldFit(40)).toBe(true);
    expect(b.wouldFit(41)).toBe(false);
    expect(b.take(41)).toBe(false);
    expect(budget.used).toBe(60);
    a.release();
    a.release();
    expect(budget.used).toBe(0);
    expect(held).toEqual([60, 0]);
  });
});
