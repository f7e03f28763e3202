import { createRequire } from "node:module";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { Compressor, Decompressor } from "zstd-napi";
import { PAYLOAD_DICTIONARY_1 } from "./payload-dictionary.ts";

/**
 * How an event's payload is stored: `jsonb` in `events.payload` (what every
 * release reads), or compressed in `events.payload_compressed` (migration
 * 0003) with `payload` set to JSON `null`, since the column is NOT NULL:
 * `compressed` is deflate (format 1, read from release 0.2.0), `zstd` is
 * Zstandard (format 2, read from release 0.6.0). Writing a format is safe
 * only once no node of an earlier release reads events (README "Upgrading").
 */
export type PayloadStorage = "jsonb" | "compressed" | "zstd";

/** The storages that keep the payload in `payload_compressed`. */
export type CompressedStorage = Exclude<PayloadStorage, "jsonb">;

/**
 * The first byte of a compressed payload: its format. 1 = raw deflate with
 * `PAYLOAD_DICTIONARY_1`; 2 = one Zstandard frame (with its content size)
 * primed with `PAYLOAD_DICTIONARY_1` as raw content.
 */
const FORMAT_OF: Record<CompressedStorage, number> = { compressed: 1, zstd: 2 };

/** The storage a format byte names, or null for an unknown one. */
function storageOfFormat(format: number | undefined): CompressedStorage | null {
  if (format === FORMAT_OF.compressed) return "compressed";
  if (format === FORMAT_OF.zstd) return "zstd";
  return null;
}
const dictionary1 = Buffer.from(PAYLOAD_DICTIONARY_1, "utf8");

type Zstd = {
  compressor: Compressor;
  decompressor: Decompressor;
  binding: typeof import("zstd-napi/binding");
};

/**
 * Zstandard keeps its contexts and the digested dictionary across calls, which
 * is most of its lead over deflate on small events (deflate hashes the 4 KB
 * dictionary again on every call). Level 3 (zstd's default): about 2.5 times
 * as fast as deflate on a typical 5 KB event, for about 8% more bytes
 * (bench/RESULTS.md, session 11). The native add-on is loaded on first use,
 * so commands and nodes that never meet format 2 do not load it; a missing
 * add-on (a broken install: `npm ci` fails when it can neither fetch nor
 * build it) throws here.
 */
let zstd: Zstd | null = null;
function zstdContexts(): Zstd {
  if (zstd) return zstd;
  // CommonJS; the binding is `module.exports = require(...)`, which ESM cannot name-import.
  const load = createRequire(import.meta.url);
  const { Compressor, Decompressor }: typeof import("zstd-napi") = load("zstd-napi");
  const binding: typeof import("zstd-napi/binding") = load("zstd-napi/binding");
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: 3, contentSizeFlag: true, checksumFlag: false });
  compressor.loadDictionary(dictionary1);
  const decompressor = new Decompressor();
  decompressor.loadDictionary(dictionary1);
  zstd = { compressor, decompressor, binding };
  return zstd;
}

/**
 * Decompressed payloads larger than this are refused (bytes): above any
 * event ingest accepts (Relay's 1 MiB), symbolicated context lines included.
 */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/**
 * Compresses an event's JSON text for `events.payload_compressed`: one
 * format byte, then the body primed with the format's dictionary. `compressed`
 * (the default): raw deflate, level 6, about 75% of gzip's size on a typical
 * 5 KB error event at about 50 µs; `zstd`: about 80% of gzip's size at about
 * 20 µs (bench/RESULTS.md). A Buffer must hold the text's UTF-8 bytes (ingest
 * passes the bytes it received when parsing changed nothing, saving a second
 * encoding of the text); its size is the caller's to bound (ingest's limits).
 * Throws what zlib or the zstd add-on throws (a missing add-on, for `zstd`).
 * Neither format carries a checksum: Postgres's pages are what guard the bytes.
 */
export function compressPayload(
  jsonText: string | Buffer,
  storage: CompressedStorage = "compressed",
): Buffer {
  const bytes = typeof jsonText === "string" ? Buffer.from(jsonText, "utf8") : jsonText;
  if (storage === "zstd") {
    return Buffer.concat([Buffer.of(FORMAT_OF.zstd), zstdContexts().compressor.compress(bytes)]);
  }
  // An 8 KiB window (the dictionary and a typical event fit) and memLevel 7:
  // 96 KiB of zlib state per call instead of 256 KiB, for the same bytes on
  // bench payloads. Inflate's default 32 KiB window reads any smaller one.
  const body = deflateRawSync(bytes, { dictionary: dictionary1, windowBits: 13, memLevel: 7 });
  return Buffer.concat([Buffer.of(FORMAT_OF.compressed), body]);
}

/** The storage a compressed payload was written with, from its format byte; throws on an unknown one. */
export function storageOfCompressed(stored: Buffer): CompressedStorage {
  const storage = storageOfFormat(stored[0]);
  if (!storage) throw new Error(`unknown stored payload format ${stored[0] ?? "(empty)"}`);
  return storage;
}

/** A Zstandard body's text, refused unless it is one frame whose declared size is within the bound. */
function inflateZstd(body: Buffer): Buffer {
  const { binding, decompressor } = zstdContexts();
  const size = body.length > 0 ? binding.getFrameContentSize(body) : null;
  if (size === null || size > MAX_PAYLOAD_BYTES) {
    throw new Error(
      `stored payload's size ${size ?? "(not declared)"} is not within ${MAX_PAYLOAD_BYTES} bytes`,
    );
  }
  if (binding.findFrameCompressedSize(body) !== body.length) {
    throw new Error("stored payload is not one Zstandard frame");
  }
  return decompressor.decompress(body);
}

/**
 * Reads a compressed payload (either format) back to its JSON object. Throws
 * on an unknown format byte, corrupt data, output over `MAX_PAYLOAD_BYTES`,
 * or JSON that is not an object.
 */
export function decompressPayload(stored: Buffer): Record<string, unknown> {
  const body = stored.subarray(1);
  const text = (
    storageOfCompressed(stored) === "zstd"
      ? inflateZstd(body)
      : inflateRawSync(body, { dictionary: dictionary1, maxOutputLength: MAX_PAYLOAD_BYTES })
  ).toString("utf8");
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("stored payload is not a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * The storage of an event row's payload: `jsonb` unless `payload` is JSON
 * `null` and `payload_compressed` is set, else its format byte's
 * (`compressed` for an unknown one: such a row fails `payloadOfRow` and is
 * never rewritten).
 */
export function storageOfRow(row: {
  payload: Record<string, unknown> | null;
  payloadCompressed: Buffer | null;
}): PayloadStorage {
  if (row.payload || !row.payloadCompressed) return "jsonb";
  return storageOfFormat(row.payloadCompressed[0]) ?? "compressed";
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
