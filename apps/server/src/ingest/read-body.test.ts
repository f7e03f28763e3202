import { deflateSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeLegacyStoreBody, readBody } from "./read-body.ts";

const stream = (bytes: Buffer) => new Blob([bytes]).stream();

describe("readBody", () => {
  it("decodes gzip, deflate and br, and passes identity through", async () => {
    const text = Buffer.from('{"message":"hi"}');
    for (const [encoding, encoded] of [
      ["gzip", gzipSync(text)],
      ["deflate", deflateSync(text)],
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

describe("decodeLegacyStoreBody", () => {
  it("reads base64 zlib bodies of old SDKs", async () => {
    const encoded = Buffer.from(deflateSync(Buffer.from('{"message":"old"}')).toString("base64"));
    const result = await decodeLegacyStoreBody(encoded, 1024);
    expect(result.ok && result.body.toString()).toBe('{"message":"old"}');
  });
});
