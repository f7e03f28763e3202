import { createHash } from "node:crypto";
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { Compressor } from "zstd-napi";
import {
  compressPayload,
  decompressPayload,
  MAX_PAYLOAD_BYTES,
  payloadOfRow,
  storageOfCompressed,
  storageOfRow,
} from "./event-payload.ts";
import { PAYLOAD_DICTIONARY_1 } from "./payload-dictionary.ts";

const event = {
  event_id: "0".repeat(32),
  platform: "node",
  exception: { values: [{ type: "Error", value: "ü ✓ \u2028", stacktrace: { frames: [] } }] },
};

describe("stored payload format 1", () => {
  it("keeps its dictionary frozen: rows already written depend on every byte", () => {
    const sha256 = createHash("sha256").update(PAYLOAD_DICTIONARY_1).digest("hex");
    expect(sha256).toBe("21524d6f1aa4427517939b89773e1895f88d318036d418b13e8660c62beee300");
  });

  it("round-trips an event, starting with the format byte", () => {
    const stored = compressPayload(JSON.stringify(event));
    expect(stored[0]).toBe(1);
    expect(decompressPayload(stored)).toEqual(event);
  });

  it("refuses an unknown format, corrupt data, a payload over the bound, and non-objects", () => {
    expect(() => decompressPayload(Buffer.of(3, 0, 0))).toThrow(/unknown stored payload format 3/);
    expect(() => decompressPayload(Buffer.alloc(0))).toThrow(/unknown stored payload format/);
    expect(() => decompressPayload(Buffer.of(1, 0xff, 0xff, 0xff))).toThrow();
    const huge = `{"a":"${"x".repeat(MAX_PAYLOAD_BYTES)}"}`;
    const bomb = Buffer.concat([
      Buffer.of(1),
      deflateRawSync(huge, { dictionary: Buffer.from(PAYLOAD_DICTIONARY_1) }),
    ]);
    expect(bomb.length).toBeLessThan(100_000);
    expect(() => decompressPayload(bomb)).toThrow(/Cannot create a Buffer larger|buffer/i);
    expect(() => decompressPayload(compressPayload("[1]"))).toThrow(/not a JSON object/);
  });

  it("reads a row from whichever column holds the payload", () => {
    expect(payloadOfRow({ payload: event, payloadCompressed: null })).toEqual(event);
    const payloadCompressed = compressPayload(JSON.stringify(event));
    expect(payloadOfRow({ payload: null, payloadCompressed })).toEqual(event);
    expect(() => payloadOfRow({ payload: null, payloadCompressed: null })).toThrow(/no payload/);
  });
});

/** A format 2 payload written with zstd parameters of the test's choosing. */
function zstdPayload(text: string, parameters: { contentSizeFlag?: boolean } = {}): Buffer {
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: 3, ...parameters });
  compressor.loadDictionary(Buffer.from(PAYLOAD_DICTIONARY_1));
  return Buffer.concat([Buffer.of(2), compressor.compress(Buffer.from(text))]);
}

describe("stored payload format 2 (zstd)", () => {
  it("round-trips an event, starting with the format byte, in fewer bytes with the dictionary", () => {
    const text = JSON.stringify(event);
    const stored = compressPayload(text, "zstd");
    expect(stored[0]).toBe(2);
    expect(decompressPayload(stored)).toEqual(event);
    expect(stored).toEqual(zstdPayload(text));
    const withoutDictionary = new Compressor();
    withoutDictionary.setParameters({ compressionLevel: 3 });
    expect(stored.length).toBeLessThan(withoutDictionary.compress(Buffer.from(text)).length + 1);
    expect(compressPayload(Buffer.from(text), "zstd")).toEqual(stored);
  });

  it("tells the formats apart, in a row and in a compressed payload", () => {
    const text = JSON.stringify(event);
    expect(storageOfCompressed(compressPayload(text))).toBe("compressed");
    expect(storageOfCompressed(compressPayload(text, "zstd"))).toBe("zstd");
    expect(() => storageOfCompressed(Buffer.of(0))).toThrow(/unknown stored payload format 0/);
    expect(storageOfRow({ payload: event, payloadCompressed: null })).toBe("jsonb");
    expect(storageOfRow({ payload: null, payloadCompressed: compressPayload(text) })).toBe(
      "compressed",
    );
    expect(storageOfRow({ payload: null, payloadCompressed: compressPayload(text, "zstd") })).toBe(
      "zstd",
    );
    expect(
      payloadOfRow({ payload: null, payloadCompressed: compressPayload(text, "zstd") }),
    ).toEqual(event);
  });

  it("refuses corrupt data, an undeclared or over-bound size, trailing frames and non-objects", () => {
    const stored = compressPayload(JSON.stringify(event), "zstd");
    expect(() => decompressPayload(Buffer.of(2))).toThrow(/not declared/);
    expect(() => decompressPayload(Buffer.of(2, 0xff, 0xff, 0xff, 0xff))).toThrow();
    const truncated = stored.subarray(0, stored.length - 3);
    expect(() => decompressPayload(truncated)).toThrow();
    const flipped = Buffer.from(stored);
    flipped[flipped.length - 2] = (flipped[flipped.length - 2] ?? 0) ^ 0xff;
    expect(() => decompressPayload(flipped)).toThrow();
    expect(() =>
      decompressPayload(zstdPayload(JSON.stringify(event), { contentSizeFlag: false })),
    ).toThrow(/not declared/);
    const huge = zstdPayload(`{"a":"${"x".repeat(MAX_PAYLOAD_BYTES)}"}`);
    expect(huge.length).toBeLessThan(100_000);
    expect(() => decompressPayload(huge)).toThrow(/is not within 16777216 bytes/);
    expect(() => decompressPayload(Buffer.concat([stored, stored.subarray(1)]))).toThrow(
      /not one Zstandard frame/,
    );
    expect(() => decompressPayload(compressPayload("[1]", "zstd"))).toThrow(/not a JSON object/);
  });
});
