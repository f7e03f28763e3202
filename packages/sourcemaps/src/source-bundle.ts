import { unzipSync } from "fflate";
import { z } from "zod";
import { normalizeDebugId } from "./debug-id.ts";

/** One file of a source bundle, with its manifest entry. */
export type BundleFile = {
  /** The URL the file was served at, `~/` meaning any scheme and host. */
  url: string;
  type: string;
  /** Lowercased header names, e.g. `debug-id`, `sourcemap`. */
  headers: Record<string, string>;
  debugId: string | null;
  bytes: Uint8Array;
};

export type SourceBundle = {
  /** The bundle's own id (manifest `debug_id`), when it has one. */
  bundleId: string | null;
  release: string | null;
  dist: string | null;
  files: BundleFile[];
};

export type SourceBundleLimits = {
  /** Largest sum of the files' uncompressed sizes, bytes. */
  maxUnpackedBytes: number;
  maxFiles: number;
};

const manifestEntry = z.object({
  url: z.string().min(1),
  type: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

const manifest = z.object({
  files: z.record(z.string(), manifestEntry),
  debug_id: z.string().optional(),
  release: z.string().optional(),
  dist: z.string().optional(),
});

const MAGIC = "SYSB";

function unzipBounded(
  zip: Uint8Array,
  limits: SourceBundleLimits,
): { ok: true; entries: Record<string, Uint8Array> } | { ok: false; error: string } {
  let files = 0;
  let unpacked = 0;
  let tooLarge = false;
  try {
    const entries = unzipSync(zip, {
      filter(file) {
        files += 1;
        unpacked += file.originalSize;
        if (files > limits.maxFiles || unpacked > limits.maxUnpackedBytes) tooLarge = true;
        return !tooLarge;
      },
    });
    if (!tooLarge) return { ok: true, entries };
  } catch (error) {
    if (!tooLarge) {
      return { ok: false, error: `bundle is not a valid ZIP archive: ${(error as Error).message}` };
    }
  }
  return {
    ok: false,
    error: `bundle has more than ${limits.maxFiles} files or ${limits.maxUnpackedBytes} unpacked bytes`,
  };
}

/**
 * Reads a source bundle as sentry-cli builds it: `SYSB`, a little-endian u32
 * version, then a ZIP holding `manifest.json` and the files under `files/`
 * (sentry-cli src/utils/source_bundle.rs, symbolic sourcebundle.rs; a plain
 * ZIP without the header is read too). Sizes are bounded by `limits` before
 * anything is inflated. Returns the files or the reason the bundle is
 * unreadable; never throws.
 */
export function readSourceBundle(
  bytes: Uint8Array,
  limits: SourceBundleLimits,
): { ok: true; bundle: SourceBundle } | { ok: false; error: string } {
  const headed = bytes.length >= 8 && new TextDecoder().decode(bytes.subarray(0, 4)) === MAGIC;
  // sentry-cli's ZIP offsets count the 8 header bytes; other writers may not.
  let unzipped = unzipBounded(bytes, limits);
  if (!unzipped.ok && headed) unzipped = unzipBounded(bytes.subarray(8), limits);
  if (!unzipped.ok) return unzipped;
  const entries = unzipped.entries;
  const manifestBytes = entries["manifest.json"];
  if (!manifestBytes) return { ok: false, error: "bundle has no manifest.json" };
  let parsed: z.infer<typeof manifest>;
  try {
    const result = manifest.safeParse(JSON.parse(new TextDecoder().decode(manifestBytes)));
    if (!result.success) {
      return { ok: false, error: `bundle manifest is invalid: ${result.error.issues[0]?.message}` };
    }
    parsed = result.data;
  } catch {
    return { ok: false, error: "bundle manifest is not JSON" };
  }
  const files: BundleFile[] = [];
  for (const [path, entry] of Object.entries(parsed.files)) {
    const content = entries[`files/${path}`] ?? entries[path];
    if (!content) return { ok: false, error: `bundle manifest names ${path}, which is missing` };
    const headers = Object.fromEntries(
      Object.entries(entry.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    files.push({
      url: entry.url,
      type: entry.type ?? "source",
      headers,
      debugId: normalizeDebugId(headers["debug-id"]),
      bytes: content,
    });
  }
  return {
    ok: true,
    bundle: {
      bundleId: normalizeDebugId(parsed.debug_id),
      release: parsed.release ?? null,
      dist: parsed.dist ?? null,
      files,
    },
  };
}
