import type { Frame } from "@sluice/protocol";
import { platformFamily } from "./stacktrace-rules.ts";

export { isInApp } from "./legacy/frame-values-legacy.ts";

const CONTEXT_LINE_PLATFORMS = new Set(["javascript", "node", "python", "php", "ruby"]);
const JS_LOW_QUALITY_PATHS = new Set(["[native code]", "native code", "eval code", "<anonymous>"]);
const JS_UNKNOWN_FUNCTIONS = new Set([
  "?",
  "<anonymous function>",
  "<anonymous>",
  "Anonymous function",
]);
const MAX_CONTEXT_LINE = 120;

const RUBY_ERB = /__\d{4,}_\d{4,}$/;
const JAVA_REFLECT = /(sun\.reflect\.Generated(?:Serialization)?ConstructorAccessor)\d+/g;
const JAVA_CGLIB = /(\$\$[\w_]+?CGLIB\$\$)[a-fA-F0-9]+(_[0-9]+)?/g;
const JAVA_ASSIST = /(\$\$_javassist)(?:_seam)?(?:_[0-9]+)?/g;
const CLOJURE_FN = /(\$fn__)\d+/g;

/**
 * Whether a path is a URL for grouping (Sentry's `has_url_origin` in
 * src/sentry/grouping/strategies/utils.py with `allow_file_origin`, as the
 * newstyle configs call it): `http:`, `https:`, `applewebdata:` and `blob:`
 * are; `file://` paths are not, so their filename still groups.
 */
function hasUrlOrigin(path: string | undefined): boolean {
  return path !== undefined && /^(https?|applewebdata|blob):/.test(path);
}

/**
 * The values a frame adds to its group hash, in Sentry's order `[module,
 * filename, function, context_line]`, each only where it contributes
 * (src/sentry/grouping/strategies/newstyle.py `frame`): the module wins
 * over the filename; the filename is the lowercased basename, dropped for
 * URLs, `<anonymous>` and `[native code]`; context lines count on
 * JavaScript, Node, Python, PHP and Ruby when at most 120 chars; JavaScript
 * function names lose their `Object.` prefix and are dropped when unknown or
 * when a source map was used and the context line counts; generated Ruby,
 * Java and Clojure names are cleaned. Null when the frame does not
 * contribute at all (e.g. low-quality JavaScript frames).
 */
export function frameValues(frame: Frame, eventPlatform: string): string[] | null {
  const platform = frame.platform ?? eventPlatform;
  const isJs = platformFamily(platform) === "javascript";
  const absPath = frame.abs_path;

  const module = moduleValue(frame, platform);
  const filenameSource = frame.filename ?? frame.abs_path;
  let filename: string | null = null;
  if (filenameSource !== undefined) {
    const base = (filenameSource.split(/[/\\]/).pop() ?? "").toLowerCase();
    if (!hasUrlOrigin(absPath) && base !== "<anonymous>" && base !== "[native code]") {
      filename = platform === "java" ? base.replace(JAVA_ASSIST, "$1<auto>") : base;
    }
  }

  let contextLine: string | null = null;
  if (CONTEXT_LINE_PLATFORMS.has(platform) && typeof frame.context_line === "string") {
    const line = frame.context_line.replaceAll("\t", "  ").trim().split(/\s+/).join(" ");
    const tooLong = frame.context_line.length > MAX_CONTEXT_LINE;
    const urlWithoutFunction = isJs && !frame.function && hasUrlOrigin(absPath);
    if (line !== "" && !tooLong && !urlWithoutFunction) contextLine = line;
  }

  let fn = functionValue(frame, platform);
  if (isJs) {
    const sourceMapped = frame.data?.sourcemap !== undefined && frame.data.sourcemap !== null;
    if (sourceMapped && contextLine !== null) fn = null;
    const raw = (frame.raw_function ?? frame.function ?? "").split(".").pop() ?? "";
    if (raw === "" || JS_UNKNOWN_FUNCTIONS.has(raw) || raw.endsWith("/<")) fn = null;
    if (raw === "eval" || (absPath !== undefined && JS_LOW_QUALITY_PATHS.has(absPath))) return null;
  }

  const values: string[] = [];
  if (module !== null) values.push(module);
  else if (filename !== null) values.push(filename);
  if (fn !== null) values.push(fn);
  if (contextLine !== null) values.push(contextLine);
  return values.length > 0 ? values : null;
}

function moduleValue(frame: Frame, platform: string): string | null {
  const module = frame.module;
  if (module === undefined || module === "") return null;
  if (platform === "javascript" && module.includes("/") && frame.abs_path?.endsWith(module)) {
    return null;
  }
  if (platform !== "java") return module;
  if (module.includes("$$Lambda$")) return null;
  if (module.startsWith("sun.reflect.GeneratedMethodAccessor")) {
    return "sun.reflect.GeneratedMethodAccessor";
  }
  if (module.startsWith("jdk.internal.reflect.GeneratedMethodAccessor")) {
    return "jdk.internal.reflect.GeneratedMethodAccessor";
  }
  return module
    .replace(JAVA_REFLECT, "$1<auto>")
    .replace(JAVA_CGLIB, "$1<auto>")
    .replace(JAVA_ASSIST, "$1<auto>")
    .replace(CLOJURE_FN, "$1<auto>");
}

function functionValue(frame: Frame, platform: string): string | null {
  const fn = frame.function || frame.raw_function;
  if (!fn) return null;
  const family = platformFamily(platform);
  if (platform === "ruby") return fn.startsWith("block ") ? "block" : fn.replace(RUBY_ERB, "");
  if (platform === "php" && (fn.startsWith("[Anonymous") || fn.startsWith("class@anonymous\0"))) {
    return null;
  }
  if (platform === "java" && fn.startsWith("lambda$")) return null;
  if (family === "native" && (fn === "<redacted>" || fn === "<unknown>")) return null;
  if (family === "javascript") return fn.split(".").pop() || null;
  return fn;
}

/** Two frames are the same call when these fields match (Sentry's `is_recursion_v1`). */
export function sameCall(a: Frame, b: Frame): boolean {
  return (
    a.abs_path === b.abs_path &&
    a.package === b.package &&
    a.module === b.module &&
    a.filename === b.filename &&
    a.function === b.function &&
    a.lineno === b.lineno &&
    a.colno === b.colno
  );
}
