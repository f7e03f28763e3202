import { createHash } from "node:crypto";
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  compressPayload,
  decompressPayload,
  MAX_PAYLOAD_BYTES,
  payloadOfRow,
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
    expect(() => decompressPayload(Buffer.of(2, 0, 0))).toThrow(/unknown stored payload format 2/);
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
