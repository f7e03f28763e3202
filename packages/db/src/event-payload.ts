import { deflateRawSync, inflateRawSync } from "node:zlib";
import { PAYLOAD_DICTIONARY_1 } from "./payload-dictionary.ts";

/**
 * How an event's payload is stored: `jsonb` in `events.payload` (what every
 * release reads), or `compressed` in `events.payload_compressed` (migration
 * 0003; readable from the release that added it) with `payload` set to JSON
 * `null`, since the column is NOT NULL. Writing `compressed` is safe only
 * once no node of an earlier release reads events (README "Upgrading").
 */
export type PayloadStorage = "jsonb" | "compressed";

/** The first byte of a compressed payload: its format. 1 = raw deflate with `PAYLOAD_DICTIONARY_1`. */
const FORMAT_DEFLATE_DICTIONARY_1 = 1;
const dictionary1 = Buffer.from(PAYLOAD_DICTIONARY_1, "utf8");

/**
 * Decompressed payloads larger than this are refused (bytes): above any
 * event ingest accepts (Relay's 1 MiB), symbolicated context lines included.
 */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/**
 * Compresses an event's JSON text for `events.payload_compressed`: one
 * format byte, then raw deflate (level 6) primed with the format's
 * dictionary. About 75% of gzip's size on a typical 5 KB error event, at
 * about 35 µs (bench figures in bench/RESULTS.md). A Buffer must hold the
 * text's UTF-8 bytes (ingest passes the bytes it received when parsing
 * changed nothing, saving a second encoding of the text).
 */
export function compressPayload(jsonText: string | Buffer): Buffer {
  // An 8 KiB window (the dictionary and a typical event fit) and memLevel 7:
  // 96 KiB of zlib state per call instead of 256 KiB, for the same bytes on
  // bench payloads. Inflate's default 32 KiB window reads any smaller one.
  const body = deflateRawSync(
    typeof jsonText === "string" ? Buffer.from(jsonText, "utf8") : jsonText,
    {
      dictionary: dictionary1,
      windowBits: 13,
      memLevel: 7,
    },
  );
  return Buffer.concat([Buffer.of(FORMAT_DEFLATE_DICTIONARY_1), body]);
}

/**
 * Reads a compressed payload back to its JSON object. Throws on an unknown
 * format byte, corrupt data, output over `MAX_PAYLOAD_BYTES`, or JSON that
 * is not an object.
 */
export function decompressPayload(stored: Buffer): Record<string, unknown> {
  const format = stored[0];
  if (format !== FORMAT_DEFLATE_DICTIONARY_1) {
    throw new Error(`unknown stored payload format ${format ?? "(empty)"}`);
  }
  const text = inflateRawSync(stored.subarray(1), {
    dictionary: dictionary1,
    maxOutputLength: MAX_PAYLOAD_BYTES,
  }).toString("utf8");
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("stored payload is not a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * An event row's payload, from whichever column holds it: `payload` unless
 * it is JSON `null` (pg reads that as `null`), else `payload_compressed`.
 * Throws when neither holds one, or as `decompressPayload`.
 */
export function payloadOfRow(row: {
  payload: Record<string, unknown> | null;
  payloadCompressed: Buffer | null;
}): Record<string, unknown> {
  if (row.payload) return row.payload;
  if (row.payloadCompressed) return decompressPayload(row.payloadCompressed);
  throw new Error("event row has no payload");
}
