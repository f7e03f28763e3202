import { createHash } from "node:crypto";
import {
  type BundleClaim,
  claimArtifactBundle,
  findArtifactBundle,
  findUploadChunks,
  finishArtifactBundle,
  isStorableText,
  type NewArtifact,
} from "@sluice/db";
import { readSourceBundle } from "@sluice/sourcemaps";
import type { Services } from "../services.ts";
import { fileKeyBytes, UPLOAD_LIMITS } from "./upload-limits.ts";

/** The answer of an assemble endpoint (docs/protocol.md §8.4). */
export type AssembleResponse = {
  state: "not_found" | "created" | "assembling" | "ok" | "error";
  missingChunks: string[];
  detail: string | null;
};

/** What an assemble call asks for: the bundle's claim without its staleness bound. */
export type AssembleRequest = Omit<BundleClaim, "staleAfterMs">;

/**
 * Runs `artifactbundle/assemble` (and the legacy release `assemble`) as
 * Sentry does, except that the assembly itself happens in this request:
 * chunks not yet uploaded are answered `not_found` with their list; a
 * bundle already assembled answers `ok` (or its `error`); otherwise this
 * node claims the bundle (another node's live claim answers `assembling`,
 * a claim left by a dead node is taken over after a minute), concatenates
 * the chunks, checks the SHA-1, reads the source bundle, stores every file
 * as its own blob and indexes it by debug id and release + dist + URL in
 * one transaction. A bad bundle ends in `error` with the reason; a storage
 * failure throws (the API answers 500 and sentry-cli retries).
 */
export async function assembleBundle(
  services: Services,
  request: AssembleRequest,
): Promise<AssembleResponse> {
  const { db } = services;
  const existing = await findArtifactBundle(db.orm, request.organizationId, request.checksum);
  if (existing?.state === "ok") return { state: "ok", missingChunks: [], detail: null };
  if (request.chunks.length === 0) {
    return existing
      ? { state: existing.state, missingChunks: [], detail: existing.detail }
      : { state: "not_found", missingChunks: [], detail: null };
  }
  const known = await findUploadChunks(db.orm, request.organizationId, request.chunks);
  const missing = [...new Set(request.chunks.filter((sha1) => !known.has(sha1)))];
  if (missing.length > 0) return { state: "not_found", missingChunks: missing, detail: null };
  const claimed = await claimArtifactBundle(db.orm, {
    ...request,
    staleAfterMs: UPLOAD_LIMITS.assembleStaleMs,
  });
  if (!claimed) {
    const current = await findArtifactBundle(db.orm, request.organizationId, request.checksum);
    return {
      state: current?.state === "ok" ? "ok" : "assembling",
      missingChunks: [],
      detail: null,
    };
  }
  const result = await buildArtifacts(services, request, known);
  if (!result.ok) {
    await finishArtifactBundle(db, claimed.id, { state: "error", detail: result.error });
    services.log.info({ checksum: request.checksum, reason: result.error }, "bundle rejected");
    return { state: "error", missingChunks: [], detail: result.error };
  }
  await finishArtifactBundle(db, claimed.id, {
    state: "ok",
    bundleDebugId: result.bundleId,
    files: result.files.map((f) => ({ ...f, bundleId: claimed.id })),
  });
  services.log.info(
    { checksum: request.checksum, files: result.files.length, release: request.release },
    "bundle assembled",
  );
  return { state: "ok", missingChunks: [], detail: null };
}

async function buildArtifacts(
  services: Services,
  request: AssembleRequest,
  known: Map<string, { size: number; blobKey: string }>,
): Promise<
  { ok: true; bundleId: string | null; files: NewArtifact[] } | { ok: false; error: string }
> {
  let total = 0;
  for (const sha1 of request.chunks) total += known.get(sha1)?.size ?? 0;
  if (total > UPLOAD_LIMITS.maxFileSize) {
    return { ok: false, error: `bundle is larger than ${UPLOAD_LIMITS.maxFileSize} bytes` };
  }
  const parts: Buffer[] = [];
  for (const sha1 of request.chunks) {
    const bytes = await services.blobs.get(known.get(sha1)?.blobKey ?? "");
    if (!bytes) return { ok: false, error: `chunk ${sha1} is recorded but its blob is missing` };
    parts.push(bytes);
  }
  const bundleBytes = Buffer.concat(parts);
  const checksum = createHash("sha1").update(bundleBytes).digest("hex");
  if (checksum !== request.checksum) {
    return {
      ok: false,
      error: `the chunks' SHA-1 is ${checksum}, not the checksum ${request.checksum}`,
    };
  }
  const read = readSourceBundle(bundleBytes, {
    maxFiles: UPLOAD_LIMITS.maxBundleFiles,
    maxUnpackedBytes: UPLOAD_LIMITS.maxUnpackedBytes,
  });
  if (!read.ok) return read;
  const release = request.release ?? read.bundle.release;
  const dist = request.dist ?? read.bundle.dist ?? "";
  // Checked before any file is stored, so a refused bundle leaves no blob behind.
  const unstorable = unstorableFile(release, dist, read.bundle.files);
  if (unstorable) return { ok: false, error: unstorable };
  const files: NewArtifact[] = [];
  for (const file of read.bundle.files) {
    const { key, sha1 } = await services.blobs.put("artifacts", file.bytes);
    files.push({
      organizationId: request.organizationId,
      release,
      dist,
      url: file.url,
      type: file.type,
      debugId: file.debugId,
      headers: file.headers,
      size: file.bytes.length,
      sha1,
      blobKey: key,
    });
  }
  return { ok: true, bundleId: read.bundle.bundleId, files };
}

/**
 * Why the bundle's files cannot be stored, or null: a URL, header, release
 * or dist with NUL or a lone surrogate (Postgres refuses them), or a
 * release + dist + URL key past `UPLOAD_LIMITS.maxFileKeyBytes`.
 */
function unstorableFile(
  release: string | null,
  dist: string,
  files: { url: string; headers: Record<string, string> }[],
): string | null {
  if (!isStorableText(release ?? "") || !isStorableText(dist)) {
    return "the bundle's release or dist contains NUL or unpaired surrogates";
  }
  for (const file of files) {
    const texts = [file.url, ...Object.entries(file.headers).flat()];
    if (!texts.every(isStorableText)) {
      return `file ${JSON.stringify(file.url.slice(0, 200))} has NUL or unpaired surrogates in its URL or headers`;
    }
    if (fileKeyBytes(release ?? "", dist, file.url) > UPLOAD_LIMITS.maxFileKeyBytes) {
      return `file URL ${JSON.stringify(file.url.slice(0, 200))}… is longer than ${UPLOAD_LIMITS.maxFileKeyBytes} bytes with its release and dist`;
    }
  }
  return null;
}
