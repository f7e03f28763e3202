/**
 * What `GET /api/0/organizations/{org}/chunk-upload/` tells sentry-cli, and
 * what the upload endpoints enforce (docs/protocol.md §8.2; the values are
 * Sentry's defaults from src/sentry/api/endpoints/chunk.py, except the file
 * size, which bounds the memory one assembly takes). Bytes unless named.
 */
export const UPLOAD_LIMITS = {
  /** Bytes per chunk; sentry-cli up to 2.39.1 needs a power of two. */
  chunkSize: 8 * 1024 * 1024,
  chunksPerRequest: 64,
  maxRequestSize: 32 * 1024 * 1024,
  /** Largest bundle or release file, assembled in memory. */
  maxFileSize: 256 * 1024 * 1024,
  /** Seconds sentry-cli may poll an assembly. */
  maxWait: 300,
  concurrency: 8,
  /** A claim on an assembly older than this is taken over (its node died), ms. */
  assembleStaleMs: 60_000,
  /** Files and unpacked bytes one bundle may hold. */
  maxBundleFiles: 20_000,
  maxUnpackedBytes: 512 * 1024 * 1024,
  /**
   * UTF-8 bytes of a stored file's release + dist + name: Postgres refuses
   * btree entries past about 2,700 bytes, so longer keys are refused first.
   */
  maxFileKeyBytes: 2_400,
} as const;

/** The UTF-8 bytes of a stored file's key, bounded by `UPLOAD_LIMITS.maxFileKeyBytes`. */
export function fileKeyBytes(release: string, dist: string, name: string): number {
  return Buffer.byteLength(release) + Buffer.byteLength(dist) + Buffer.byteLength(name);
}

/**
 * The upload kinds Sluice assembles: artifact bundles (sentry-cli 2.x and
 * 3.x, bundler plugins) and release bundles (2.x with `release_files`).
 * Debug files are not accepted, so sentry-cli does not try them here.
 */
export const ACCEPTED_UPLOADS = ["release_files", "artifact_bundles", "artifact_bundles_v2"];
