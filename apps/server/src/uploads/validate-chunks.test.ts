import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { sha1Checksum, validateChunks } from "./validate-chunks.ts";

const limits = { chunkSize: 16, chunksPerRequest: 3, maxRequestSize: 24 };
const sha1 = (bytes: Buffer) => createHash("sha1").update(bytes).digest("hex");
const part = (bytes: Buffer, field = "file", filename = sha1(bytes)) => ({
  field,
  filename,
  bytes,
});

describe("validateChunks", () => {
  it("accepts raw and gzipped chunks named by the SHA-1 of their bytes, any case", async () => {
    const a = Buffer.from("first chunk");
    const b = Buffer.from("second");
    const result = await validateChunks(
      [part(a, "file", sha1(a).toUpperCase()), part(gzipSync(b), "file_gzip", sha1(b))],
      limits,
    );
    expect(result).toEqual({
      ok: true,
      chunks: [
        { sha1: sha1(a), bytes: a },
        { sha1: sha1(b), bytes: b },
      ],
    });
  });

  it("ignores parts of other fields", async () => {
    const result = await validateChunks([part(Buffer.from("x"), "other", "name")], limits);
    expect(result).toEqual({ ok: true, chunks: [] });
  });

  it("refuses more parts than a request may carry", async () => {
    const parts = [1, 2, 3, 4].map((n) => part(Buffer.from(String(n))));
    expect(await validateChunks(parts, limits)).toEqual({ ok: false, error: "Too many chunks" });
  });

  it("refuses a chunk past the chunk size, raw or inflated", async () => {
    const big = Buffer.alloc(17, 1);
    expect(await validateChunks([part(big)], limits)).toEqual({
      ok: false,
      error: "Chunk size too large",
    });
    expect(await validateChunks([part(gzipSync(big), "file_gzip", sha1(big))], limits)).toEqual({
      ok: false,
      error: "Chunk size too large, or not gzip",
    });
  });

  it("refuses a file_gzip part that is not gzip", async () => {
    const result = await validateChunks([part(Buffer.from("plain"), "file_gzip")], limits);
    expect(result).toEqual({ ok: false, error: "Chunk size too large, or not gzip" });
  });

  it("refuses chunks past the request size together", async () => {
    const parts = [Buffer.alloc(16, 1), Buffer.alloc(16, 2)].map((b) => part(b));
    expect(await validateChunks(parts, limits)).toEqual({ ok: false, error: "Request too large" });
  });

  it("refuses a chunk whose name is not its SHA-1", async () => {
    const bytes = Buffer.from("abc");
    const result = await validateChunks([part(bytes, "file", "0".repeat(40))], limits);
    expect(result).toEqual({
      ok: false,
      error: `Chunk named ${"0".repeat(40)} has SHA-1 ${sha1(bytes)}`,
    });
  });
});

describe("sha1Checksum", () => {
  it("reads 40 hex digits as lowercase and refuses anything else", () => {
    expect(sha1Checksum.parse("A".repeat(40))).toBe("a".repeat(40));
    expect(sha1Checksum.safeParse("a".repeat(39)).success).toBe(false);
    expect(sha1Checksum.safeParse("g".repeat(40)).success).toBe(false);
  });
});
