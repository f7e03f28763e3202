export type EventJsonResult =
  | { ok: true; value: Record<string, unknown>; text: string }
  | { ok: false; detail: string };

/**
 * Parses an event payload and returns it with a text form that Postgres
 * `jsonb` accepts. Rejects nesting deeper than `maxDepth` (Postgres and our
 * walkers recurse) and anything but an object. Translates the bare `NaN`,
 * `Infinity` and `-Infinity` tokens that Python SDKs may emit to `null`, as
 * Relay does for them (relay-server/src/endpoints/store.rs). Strips `\u0000`
 * and lone surrogates, which `jsonb` refuses; `text` is the input itself when
 * nothing needed changing, so the usual case costs one scan and one parse.
 */
export function parseEventJson(text: string, maxDepth: number): EventJsonResult {
  const scan = scanJson(text);
  if (scan.depth > maxDepth) {
    return { ok: false, detail: `JSON nesting deeper than ${maxDepth} levels` };
  }
  const source = scan.nonFinite ? replaceNonFinite(text) : text;
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    return { ok: false, detail: `invalid JSON: ${(error as Error).message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, detail: "event payload must be a JSON object" };
  }
  if (UNSAFE_ESCAPE.test(source)) {
    const cleaned = cleanStrings(value) as Record<string, unknown>;
    return { ok: true, value: cleaned, text: JSON.stringify(cleaned) };
  }
  return { ok: true, value: value as Record<string, unknown>, text: source };
}

export type BoundedJsonResult =
  | { ok: true; value: unknown }
  | { ok: false; reason: "size" | "depth" | "syntax"; detail: string };

/**
 * Parses a JSON document of at most `maxBytes` (UTF-8 bytes for a Buffer,
 * UTF-16 code units for a string) nested at most `maxDepth` levels, checking
 * both before `JSON.parse` runs, so that a hostile document costs one linear
 * scan (V8's parser recurses and allocates per level). Never throws.
 */
export function parseBoundedJson(
  input: Buffer | string,
  maxBytes: number,
  maxDepth: number,
): BoundedJsonResult {
  if (input.length > maxBytes) {
    return { ok: false, reason: "size", detail: `longer than ${maxBytes} bytes` };
  }
  const text = typeof input === "string" ? input : input.toString("utf8");
  if (scanJson(text).depth > maxDepth) {
    return { ok: false, reason: "depth", detail: `JSON nesting deeper than ${maxDepth} levels` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: "syntax", detail: `invalid JSON: ${(error as Error).message}` };
  }
}

const UNSAFE_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;

function scanJson(text: string): { depth: number; nonFinite: boolean } {
  let depth = 0;
  let maxDepth = 0;
  let inString = false;
  let nonFinite = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > maxDepth) maxDepth = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x4e || c === 0x49) nonFinite = true;
  }
  return { depth: maxDepth, nonFinite };
}

function replaceNonFinite(text: string): string {
  let out = "";
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    for (const token of ["-Infinity", "Infinity", "NaN"]) {
      if (text.startsWith(token, i)) {
        out += `${text.slice(last, i)}null`;
        i += token.length - 1;
        last = i + 1;
        break;
      }
    }
  }
  return out + text.slice(last);
}

function cleanString(value: string): string {
  return value.replaceAll("\u0000", "").toWellFormed();
}

function cleanStrings(value: unknown): unknown {
  if (typeof value === "string") return cleanString(value);
  if (Array.isArray(value)) return value.map(cleanStrings);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[cleanString(key)] = cleanStrings(inner);
    return out;
  }
  return value;
}
