import { originalPositionFor, sourceContentFor, type TraceMap } from "@jridgewell/trace-mapping";
import type { Frame, NormalizedEvent, Stacktrace } from "@sluice/protocol";
import {
  candidateUrls,
  decodeDataUrl,
  findSourceMappingUrl,
  resolveSourceMapUrl,
} from "./artifact-urls.ts";
import { normalizeDebugId } from "./debug-id.ts";
import { parseSourceMap, type SourceMapCache } from "./source-map-cache.ts";

/** An uploaded file as symbolication sees it. */
export type ArtifactRef = {
  url: string;
  type: string;
  /** Lowercased header names (`sourcemap`, `debug-id`). */
  headers: Record<string, string>;
  sha1: string;
  /** Where `read` finds the bytes (a blob key); opaque to symbolication. */
  key: string;
};

/**
 * Where symbolication finds uploaded files; the server backs it with the
 * `artifacts` table and the blob store.
 */
export type ArtifactLookup = {
  /** The newest source map with this debug id visible to the event's project. */
  sourceMapByDebugId(debugId: string): Promise<ArtifactRef | null>;
  /**
   * Whether the organization ever uploaded a file (may be cached for
   * seconds): without uploads, an unmapped frame is expected, not a problem.
   */
  anyUploads(): Promise<boolean>;
  /** The newest file of the release (and dist, `""` for none) at the first matching URL. */
  byUrl(release: string, dist: string, urls: string[]): Promise<ArtifactRef | null>;
  /** The file's bytes; null when its blob is missing. */
  read(artifact: ArtifactRef): Promise<Uint8Array | null>;
};

/**
 * A processing error recorded on the event, in Sentry's `errors` shape with
 * Sentry's JavaScript error types (src/sentry/models/eventerror.py):
 * `js_no_source` (no map or file found), `js_invalid_sourcemap` (found but
 * unreadable), `js_invalid_sourcemap_location` (the map has no mapping for
 * the frame's position; also when an upload's blob is gone). `reason` is
 * Sluice's own sentence for people.
 */
export type ProcessingError = {
  type: string;
  url: string;
  reason: string;
  debug_id?: string;
  release?: string;
};

export type SymbolicationResult = {
  /** Frames rewritten, over all stack traces. */
  mappedFrames: number;
  errors: ProcessingError[];
};

const JS_PLATFORMS = new Set(["javascript", "node"]);
const CONTEXT_LINES = 5;
const MAX_LINE = 150;

/**
 * Rewrites the JavaScript frames of `event` through uploaded source maps
 * (docs/protocol.md §8.7): a frame whose file has a `debug_meta` image of
 * type `sourcemap` uses the map with that debug id; otherwise the release's
 * uploads are searched by URL and the minified file's `Sourcemap` header or
 * `sourceMappingURL` leads to its map. A mapped frame gets the original
 * `abs_path`, `filename`, `lineno`, `colno`, `function` (the caller's call-
 * site name, Sentry processor.py `get_function_for_token`), five lines of
 * context each side from `sourcesContent`, `in_app` from the original path
 * and `data.sourcemap` (the SDK's `module`, which named the minified file,
 * is dropped); the stack trace as sent is kept as `raw_stacktrace` beside
 * it. Frames handled are Sentry's (src/sentry/lang/javascript/processing.py
 * `_handles_frame`): with a path and line, not native, and for Node only
 * paths, not built-in modules. A frame that cannot be mapped is left as sent
 * and the reason is returned (one per file); a frame without a debug id of
 * an organization that never uploaded a file is left alone without one. Mutates `event` (and so `event.raw`); throws only
 * when `lookup` does (a database failure, which the job retries).
 */
export async function symbolicateEvent(
  event: NormalizedEvent,
  lookup: ArtifactLookup,
  cache: SourceMapCache,
): Promise<SymbolicationResult> {
  const run = new SymbolicationRun(event, lookup, cache);
  for (const holder of [...event.exceptions, ...event.threads]) {
    if (holder.stacktrace) {
      const raw = await run.stacktrace(holder.stacktrace);
      if (raw) holder.raw_stacktrace = raw;
    }
  }
  if (event.stacktrace) await run.stacktrace(event.stacktrace);
  return { mappedFrames: run.mappedFrames, errors: [...run.errors.values()] };
}

type ResolvedMap = { map: TraceMap; mapUrl: string; via: "debug-id" | "release" };

class SymbolicationRun {
  mappedFrames = 0;
  readonly errors = new Map<string, ProcessingError>();
  private readonly debugIds = new Map<string, string>();
  private readonly maps = new Map<string, Promise<ResolvedMap | null>>();

  constructor(
    private readonly event: NormalizedEvent,
    private readonly lookup: ArtifactLookup,
    private readonly cache: SourceMapCache,
  ) {
    const debugMeta = event.raw.debug_meta as { images?: unknown } | undefined;
    const images = Array.isArray(debugMeta?.images) ? debugMeta.images : [];
    for (const image of images) {
      if (image === null || typeof image !== "object") continue;
      const { type, code_file: codeFile, debug_id: debugId } = image as Record<string, unknown>;
      const id = normalizeDebugId(debugId);
      if (type === "sourcemap" && typeof codeFile === "string" && id) {
        this.debugIds.set(codeFile, id);
      }
    }
  }

  /**
   * Maps the frames of one stack trace; returns the frames as sent when any
   * changed. They are copied only then, before the first change: copying
   * every frame of every event was 7% of the worker's CPU.
   */
  async stacktrace(stacktrace: Stacktrace): Promise<Stacktrace | null> {
    let original: Frame[] | null = null;
    const keepOriginal = () => {
      original ??= stacktrace.frames.map((frame) => structuredClone(frame));
    };
    let callerName: string | null = null;
    for (const frame of stacktrace.frames) {
      const mapped = await this.frame(frame, callerName, keepOriginal);
      callerName = mapped?.callSiteName ?? null;
    }
    return original ? { frames: original } : null;
  }

  /** Maps one frame in place, calling `beforeChange` first; null when it is left as it was. */
  private async frame(
    frame: Frame,
    callerName: string | null,
    beforeChange: () => void,
  ): Promise<{ callSiteName: string | null } | null> {
    const platform = frame.platform ?? this.event.platform;
    const url = frame.abs_path ?? frame.filename;
    if (
      !JS_PLATFORMS.has(platform) ||
      !url ||
      typeof frame.lineno !== "number" ||
      typeof frame.colno !== "number" ||
      frame.in_app === false ||
      url === "native" ||
      url === "[native code]" ||
      (platform === "node" && !/^(\/|app:|webpack:|file:)/.test(url))
    ) {
      return null;
    }
    const resolved = await this.mapFor(url);
    if (!resolved) return null;
    const position = originalPositionFor(resolved.map, {
      line: frame.lineno,
      column: frame.colno - 1,
    });
    if (position.source === null) {
      this.record(url, {
        type: "js_invalid_sourcemap_location",
        url: resolved.mapUrl,
        reason: `the source map has no mapping for line ${frame.lineno}, column ${frame.colno}`,
      });
      return null;
    }
    const absPath = resolveSourceMapUrl(resolved.mapUrl, position.source) ?? position.source;
    beforeChange();
    frame.abs_path = absPath;
    frame.filename = cleanFilename(position.source);
    frame.lineno = position.line;
    frame.colno = position.column + 1;
    if (callerName) frame.function = callerName;
    // The SDK's module named the minified file; grouping would prefer it.
    delete frame.module;
    const content = sourceContentFor(resolved.map, position.source);
    if (content !== null) {
      const lines = content.split(/\r?\n/);
      const index = position.line - 1;
      if (index < lines.length) {
        frame.context_line = trimLine(lines[index] ?? "", position.column);
        frame.pre_context = lines
          .slice(Math.max(0, index - CONTEXT_LINES), index)
          .map((l) => trimLine(l));
        frame.post_context = lines
          .slice(index + 1, index + 1 + CONTEXT_LINES)
          .map((l) => trimLine(l));
      }
    }
    const inApp = inAppOf(absPath);
    if (inApp !== null) frame.in_app = inApp;
    frame.data = { ...frame.data, sourcemap: resolved.mapUrl, resolved_with: resolved.via };
    this.mappedFrames += 1;
    return { callSiteName: position.name };
  }

  private mapFor(url: string): Promise<ResolvedMap | null> {
    let pending = this.maps.get(url);
    if (!pending) {
      pending = this.findMap(url);
      this.maps.set(url, pending);
    }
    return pending;
  }

  private async findMap(url: string): Promise<ResolvedMap | null> {
    const debugId = this.debugIds.get(url);
    if (debugId) {
      const artifact = await this.lookup.sourceMapByDebugId(debugId);
      if (artifact) return this.parse(url, artifact, artifact.url, "debug-id");
    }
    const release = this.event.release;
    if (!release) {
      if (debugId) {
        this.record(url, {
          type: "js_no_source",
          url,
          reason: `no source map was uploaded with debug id ${debugId}`,
          debug_id: debugId,
        });
      }
      return null;
    }
    // Without a debug id, and nothing ever uploaded, there is nothing to say.
    if (!debugId && !(await this.lookup.anyUploads())) return null;
    const dist = this.event.dist ?? "";
    const file = await this.lookup.byUrl(release, dist, candidateUrls(url));
    if (!file) {
      this.record(url, {
        type: "js_no_source",
        url,
        reason: debugId
          ? `no source map was uploaded with debug id ${debugId}, and release ${release} has no file at this URL`
          : `release ${release}${dist ? ` (dist ${dist})` : ""} has no file at this URL`,
        release,
        ...(debugId ? { debug_id: debugId } : {}),
      });
      return null;
    }
    if (file.type === "source_map") return this.parse(url, file, file.url, "release");
    const reference = file.headers.sourcemap ?? file.headers["x-sourcemap"] ?? null;
    let mapReference = reference;
    if (!mapReference) {
      const bytes = await this.lookup.read(file);
      if (!bytes) {
        this.record(url, missingBlob(file.url));
        return null;
      }
      mapReference = findSourceMappingUrl(new TextDecoder().decode(bytes));
    }
    if (!mapReference) {
      this.record(url, {
        type: "js_no_source",
        url,
        reason: `the uploaded file ${file.url} names no source map`,
        release,
      });
      return null;
    }
    if (mapReference.startsWith("data:")) {
      const inline = decodeDataUrl(mapReference);
      return this.parseBytes(url, inline, file.sha1, file.url, "release");
    }
    const mapUrl = resolveSourceMapUrl(file.url, mapReference) ?? mapReference;
    const map = await this.lookup.byUrl(release, dist, candidateUrls(mapUrl));
    if (!map) {
      this.record(url, {
        type: "js_no_source",
        url: mapUrl,
        reason: `release ${release} has no source map at ${mapUrl}`,
        release,
      });
      return null;
    }
    return this.parse(url, map, map.url, "release");
  }

  private async parse(
    url: string,
    artifact: ArtifactRef,
    mapUrl: string,
    via: ResolvedMap["via"],
  ): Promise<ResolvedMap | null> {
    try {
      const map = await this.cache.get(artifact.sha1, async () => {
        const bytes = await this.lookup.read(artifact);
        if (!bytes) throw new MissingBlob();
        return bytes;
      });
      return { map, mapUrl, via };
    } catch (error) {
      if (error instanceof MissingBlob) this.record(url, missingBlob(mapUrl));
      else if (error instanceof SyntaxError || error instanceof Error) {
        this.record(url, invalidMap(mapUrl, error));
      }
      return null;
    }
  }

  private parseBytes(
    url: string,
    bytes: Uint8Array | null,
    key: string,
    mapUrl: string,
    via: ResolvedMap["via"],
  ): ResolvedMap | null {
    try {
      if (!bytes) throw new Error("the data: URL cannot be decoded");
      return { map: parseSourceMap(bytes), mapUrl: `${mapUrl} (inline ${key})`, via };
    } catch (error) {
      this.record(url, invalidMap(mapUrl, error as Error));
      return null;
    }
  }

  private record(url: string, error: ProcessingError) {
    if (!this.errors.has(url)) this.errors.set(url, error);
  }
}

class MissingBlob extends Error {}

function missingBlob(url: string): ProcessingError {
  return {
    type: "js_no_source",
    url,
    reason: "the upload is recorded but its blob is missing (run `sluice verify`)",
  };
}

function invalidMap(url: string, error: Error): ProcessingError {
  return {
    type: "js_invalid_sourcemap",
    url,
    reason: `the source map cannot be read: ${error.message}`,
  };
}

/** A source path as shown: without `webpack://name/` and leading `./` or `../`. */
function cleanFilename(source: string): string {
  return source
    .replace(/^webpack:\/\/[^/]*\//, "")
    .replace(/^(\.\.?\/)+/, "")
    .replace(/^file:\/\//, "");
}

/**
 * Whether a mapped path is the application's: dependencies (`node_modules`,
 * webpack's `~/`) are not, webpack's `./` is; null leaves `in_app` as the
 * SDK sent it (Sentry processor.py, docs/protocol.md §8.7 step 5).
 */
function inAppOf(absPath: string): boolean | null {
  if (/(^|\/)node_modules\//.test(absPath) || /^webpack:\/\/\/?~\//.test(absPath)) return false;
  if (/^webpack:\/\/[^/]*\/\.\//.test(absPath) || /^app:\/\/\//.test(absPath)) return true;
  return null;
}

/** Sentry's `trim_line`: lines over 150 characters become 140 around `column`, marked `{snip}`. */
function trimLine(line: string, column = 0): string {
  if (line.length <= MAX_LINE) return line;
  const start = Math.max(0, Math.min(column - 70, line.length - 140));
  const end = Math.min(line.length, start + 140);
  return `${start > 0 ? "{snip} " : ""}${line.slice(start, end)}${end < line.length ? " {snip}" : ""}`;
}
