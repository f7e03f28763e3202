import type { Frame } from "@sluice/protocol";

const JS_PLATFORMS = new Set(["javascript", "node"]);
const CONTEXT_LINE_PLATFORMS = new Set(["javascript", "node", "python", "php", "ruby"]);
const JS_IGNORED_PATHS = new Set(["[native code]", "native code", "eval code", "<anonymous>"]);
const JS_ANONYMOUS = new Set([
  "?",
  "<anonymous function>",
  "<anonymous>",
  "Anonymous function",
  "",
]);
/** all-platforms@2023-01-11 enhancement rules that mark node internals `-group`. */
const NEVER_GROUPED_FUNCTIONS = new Set(["runMicrotasks", "processTicksAndRejections"]);
const MAX_CONTEXT_LINE = 120;

/**
 * The values a frame adds to its group hash: `[module, filename, function,
 * context_line]`, each only when it contributes (Sentry src/sentry/grouping/
 * strategies/newstyle.py `frame`). Null when the
 * frame does not contribute at all.
 */
export function frameValues(frame: Frame, eventPlatform: string): string[] | null {
  const platform = frame.platform ?? eventPlatform;
  const isJs = JS_PLATFORMS.has(platform);
  const absPath = frame.abs_path ?? "";
  const fn = frame.function ?? frame.raw_function;
  if (isJs && (fn === "eval" || JS_IGNORED_PATHS.has(absPath))) return null;
  if (fn && NEVER_GROUPED_FUNCTIONS.has(fn)) return null;
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(absPath);

  const values: string[] = [];
  let module = frame.module;
  if (module && isJs && module.includes("/") && absPath.endsWith(module)) module = undefined;
  if (module) values.push(module);

  if (!module) {
    const path = frame.filename ?? frame.abs_path;
    const ignoredPath = isUrl || path === "<anonymous>" || path === "[native code]";
    if (path && !ignoredPath) {
      const base = path.split(/[/\\]/).pop()?.toLowerCase();
      if (base) values.push(base);
    }
  }

  let contextLine: string | null = null;
  if (CONTEXT_LINE_PLATFORMS.has(platform) && typeof frame.context_line === "string") {
    const line = frame.context_line;
    const droppedForJs = isJs && !fn && isUrl;
    if (line.length <= MAX_CONTEXT_LINE && !droppedForJs) {
      const collapsed = line.trim().replace(/\s+/g, " ");
      if (collapsed !== "") contextLine = collapsed;
    }
  }

  const functionName = fn ? groupingFunctionName(fn, isJs) : null;
  const sourceMapped = frame.data !== undefined && frame.data.sourcemap !== undefined;
  if (functionName && !(isJs && sourceMapped && contextLine)) values.push(functionName);
  if (contextLine) values.push(contextLine);
  return values.length > 0 ? values : null;
}

function groupingFunctionName(name: string, isJs: boolean): string | null {
  if (!isJs) return name;
  if (JS_ANONYMOUS.has(name) || name.endsWith("/<")) return null;
  const trimmed = name.split(".").pop() ?? name;
  return JS_ANONYMOUS.has(trimmed) ? null : trimmed;
}

/** Two frames are the same call when these fields match (recursion is hashed once). */
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

/**
 * Whether a frame is the application's own code, when the SDK did not say:
 * third-party paths (`node_modules`, `site-packages`, `dist-packages`,
 * `vendor`, Go module cache) are not; webpack `webpack:`/`app:` sources are,
 * unless under `~/` or `node_modules`; anything else is not
 * (all-platforms@2023-01-11 and src/sentry/stacktraces/processing.py).
 */
export function isInApp(frame: Frame): boolean {
  if (typeof frame.in_app === "boolean") return frame.in_app;
  const path = frame.abs_path ?? frame.filename ?? "";
  if (/(^|\/)(node_modules|site-packages|dist-packages|vendor)\//.test(path)) return false;
  if (/\/go\/pkg\/mod\//.test(path)) return false;
  if (/^(webpack|app):/.test(path)) return !/^(webpack|app):\/\/\/?~\//.test(path);
  return false;
}
