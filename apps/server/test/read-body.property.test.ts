import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BodyResult, readBody } from "../src/http/read-body.ts";

const SEED = 0x5e1ce;
const MAX = 64 * 1024;

/**
 * 100 ms plus 100 ns a byte on the wire and decoded: zlib inflates at
 * hundreds of MB/s, so this leaves room for a loaded machine while a body
 * that decodes forever, or copies itself per chunk, fails.
 */
const budgetMs = (bytes: number) => 100 + (bytes * 100) / 1e6;

const ENCODINGS = ["gzip", "x-gzip", "deflate", "br"] as const;
type Encoding = (typeof ENCODINGS)[number];

function encode(encoding: Encoding | "deflate-raw", bytes: Uint8Array): Buffer {
  switch (encoding) {
    case "gzip":
    case "x-gzip":
      return gzipSync(bytes);
    case "deflate":
      return deflateSync(bytes);
    case "deflate-raw":
      return deflateRawSync(bytes);
    case "br":
      return brotliCompressSync(bytes);
  }
}

/** A web stream of `bytes` cut into chunks at `cuts` (a chunked body as a client sends it). */
function streamOf(bytes: Buffer, cuts: number[]): ReadableStream<Uint8Array> {
  const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const offset of [...offsets, bytes.length]) {
    if (offset > last) chunks.push(bytes.subarray(last, offset));
    last = Math.max(last, offset);
  }
  return new ReadableStream({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(new Uint8Array(next));
      else controller.close();
    },
  });
}

async function readChecked(
  wire: Buffer,
  cuts: number[],
  encoding: string | undefined,
  decodedBytes = 0,
): Promise<BodyResult> {
  const start = performance.now();
  const result = await readBody(streamOf(wire, cuts), encoding, MAX);
  const ms = performance.now() - start;
  const bytes = wire.length + Math.min(decodedBytes, MAX);
  expect(
    ms,
    `readBody of ${wire.length} bytes (${encoding}) took ${ms.toFixed(1)} ms`,
  ).toBeLessThan(budgetMs(bytes));
  if (result.ok) {
    expect(Buffer.isBuffer(result.body)).toBe(true);
    expect(result.body.length).toBeLessThanOrEqual(MAX);
  } else {
    expect([400, 413, 415]).toContain(result.status);
    expect(typeof result.detail === "string" && result.detail.length > 0).toBe(true);
  }
  return result;
}

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }),
  fc.string({ unit: "binary", maxLength: 2000 }).map((s) => new TextEncoder().encode(s)),
  fc.nat({ max: MAX }).map((n) => new Uint8Array(n).fill(0x7b)),
);
const cuts = fc.array(fc.nat(), { maxLength: 8 });
const anyEncoding = fc.oneof(
  fc.constantFrom(...ENCODINGS),
  fc.constantFrom(
    undefined,
    "identity",
    "GZIP",
    " br ",
    "zstd",
    "gzip, br",
    "compress",
    "",
    "__proto__",
    "constructor",
    "toString",
  ),
  fc.string({ maxLength: 12 }),
);

describe("readBody properties", () => {
  it("decodes what each encoding produced, byte for byte, in any chunking", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Encoding | "deflate-raw">(...ENCODINGS, "deflate-raw"),
        payload,
        cuts,
        async (encoding, bytes, at) => {
          const header = encoding === "deflate-raw" ? "deflate" : encoding;
          const result = await readChecked(encode(encoding, bytes), at, header, bytes.length);
          expect(result.ok, `${encoding}: ${!result.ok && result.detail}`).toBe(true);
          if (result.ok) expect(result.body.equals(Buffer.from(bytes))).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("never throws on any bytes under any Content-Encoding, and answers a documented shape", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 8192 }),
        cuts,
        anyEncoding,
        async (bytes, at, encoding) => {
          await readChecked(Buffer.from(bytes), at, encoding);
        },
      ),
      { seed: SEED, numRuns: 600 },
    );
  });

  it("answers 400 for corrupt or truncated streams, never a partial body", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENCODINGS),
        fc.uint8Array({ minLength: 64, maxLength: 4096 }),
        fc.nat(),
        fc.oneof(fc.constant("truncate"), fc.constant("flip"), fc.constant("garbage")),
        cuts,
        async (encoding, bytes, where, how, at) => {
          const wire = Buffer.from(encode(encoding, bytes));
          const i = where % wire.length;
          const broken =
            how === "truncate"
              ? wire.subarray(0, Math.max(1, Math.min(i, wire.length - 8)))
              : how === "flip"
                ? Buffer.from(wire.map((b, j) => (j === i ? b ^ 0xff : b)))
                : Buffer.concat([wire, Buffer.from("garbage after the stream")]);
          const result = await readChecked(broken, at, encoding, bytes.length);
          // A flipped byte can still be valid data (a literal of another value), but never longer than it was.
          if (result.ok) expect(result.body.length).toBeLessThanOrEqual(bytes.length + 64);
          if (how === "truncate") expect(result.ok).toBe(false);
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("stops bombs and oversized bodies with 413 after at most its limit", async () => {
    const bombs = new Map<string, Buffer>();
    const bomb = (encoding: Encoding | "identity", size: number) => {
      const key = `${encoding}:${size}`;
      let wire = bombs.get(key);
      if (!wire) {
        wire =
          encoding === "identity"
            ? Buffer.alloc(Math.min(size, 4 * MAX))
            : encode(encoding, new Uint8Array(size));
        bombs.set(key, wire);
      }
      return wire;
    };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Encoding | "identity">(...ENCODINGS, "identity"),
        fc.constantFrom(MAX + 1, 4 * 1024 * 1024, 64 * 1024 * 1024),
        cuts,
        async (encoding, size, at) => {
          const result = await readChecked(bomb(encoding, size), at, encoding, MAX);
          expect(result).toMatchObject({ ok: false, status: 413 });
        },
      ),
      { seed: SEED, numRuns: 40 },
    );
  }, 30_000);

  it("answers an empty body, with or without an encoding", async () => {
    for (const encoding of [undefined, ...ENCODINGS]) {
      const result = await readBody(null, encoding, MAX);
      expect(result.ok || [400, 413, 415].includes(result.status)).toBe(true);
    }
  });
});
