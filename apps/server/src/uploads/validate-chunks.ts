import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { z } from "zod";
import { UPLOAD_LIMITS } from "./upload-limits.ts";

const gunzipAsync = promisify(gunzip);
const SHA1 = /^[0-9a-f]{40}$/;

/** Chunks one assemble request may name. */
export const MAX_ASSEMBLE_CHUNKS = 10_000;

/** A SHA-1 checksum as sentry-cli sends it: 40 hex digits, any case, read as lowercase. */
export const sha1Checksum = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(SHA1, "must be 40 hex digits"));

/** One part of a chunk upload: its form field, its file name (the chunk's SHA-1) and its bytes. */
export type ChunkPart = { field: string; filename: string; bytes: Uint8Array };

/** A checked chunk: its uncompressed bytes and their lowercase SHA-1. */
export type Chunk = { sha1: string; bytes: Buffer };

/** The limits `validateChunks` enforces (`UPLOAD_LIMITS` unless a test passes smaller ones). */
export type ChunkLimits = { chunkSize: number; chunksPerRequest: number; maxRequestSize: number };

/**
 * The chunks of one chunk-upload request, checked as Sentry's chunk
 * endpoint does (src/sentry/api/endpoints/chunk.py): at most
 * `chunksPerRequest` parts; parts named `file` are raw, `file_gzip`
 * gzipped (inflated at most to `chunkSize`, so a bomb stops early); each
 * chunk at most `chunkSize` bytes, all together at most `maxRequestSize`;
 * each part's file name is the SHA-1 of its uncompressed bytes. Parts with
 * another field are ignored. A refusal is the `error` text of Sentry's 400.
 */
export async function validateChunks(
  parts: readonly ChunkPart[],
  limits: ChunkLimits = UPLOAD_LIMITS,
): Promise<{ ok: true; chunks: Chunk[] } | { ok: false; error: string }> {
  if (parts.length > limits.chunksPerRequest) return { ok: false, error: "Too many chunks" };
  const chunks: Chunk[] = [];
  let total = 0;
  for (const part of parts) {
    if (part.field !== "file" && part.field !== "file_gzip") continue;
    let bytes = Buffer.from(part.bytes);
    if (part.field === "file_gzip") {
      try {
        bytes = await gunzipAsync(bytes, { maxOutputLength: limits.chunkSize });
      } catch {
        return { ok: false, error: "Chunk size too large, or not gzip" };
      }
    }
    if (bytes.length > limits.chunkSize) return { ok: false, error: "Chunk size too large" };
    total += bytes.length;
    if (total > limits.maxRequestSize) return { ok: false, error: "Request too large" };
    const actual = createHash("sha1").update(bytes).digest("hex");
    if (actual !== part.filename.toLowerCase()) {
      return { ok: false, error: `Chunk named ${part.filename} has SHA-1 ${actual}` };
    }
    chunks.push({ sha1: actual, bytes });
  }
  return { ok: true, chunks };
}
