export type EventJsonResult =
  | { ok: true; value: Record<string, unknown>; text: string }
  | { ok: false; detail: string };

/**
 * Parses an event payload and returns it with a text form that Postgres
 * `jsonb` accepts. Rejects nesting deeper than `maxDepth` (Postgres and our
 * walkers recurse) and anything but an object. Translates the bare `NaN`,
 * `Infinity` and `-Infinity` tokens that Python SDKs may emit to `null`, as
 * Relay does for them (relay-server/src/endpoints/store.rs). Strips `\u0000`
 * and lone surrogates, which `jsonb` refuses, and writes numbers `numeric`
 * cannot hold as doubles; `text` is the input itself when
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
  if (scan.longNumber || UNSAFE_ESCAPE.test(source)) {
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
  if (jsonDepthExceeds(text, maxDepth)) {
    return { ok: false, reason: "depth", detail: `JSON nesting deeper than ${maxDepth} levels` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: "syntax", detail: `invalid JSON: ${(error as Error).message}` };
  }
}

/**
 * Whether arrays and objects in JSON `text` nest deeper than `maxDepth`: one
 * pass over the characters that skips strings, stopping at the first level
 * too deep. Malformed text is left for `JSON.parse` to refuse.
 */
export function jsonDepthExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

const UNSAFE_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;

/**
 * A number literal with this many digits in a row, or an exponent of this
 * many digits, may lie outside Postgres `numeric` (131072 digits before the
 * point, 16383 after), which `jsonb` refuses; such text is written anew from
 * the parsed value, where V8 has made it a double.
 */
export const LONG_NUMBER_DIGITS = 1000;
export const LONG_EXPONENT_DIGITS = 4;

function scanJson(text: string): { depth: number; nonFinite: boolean; longNumber: boolean } {
  let depth = 0;
  let maxDepth = 0;
  let nonFinite = false;
  let longNumber = false;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x39 && c >= 0x30) {
      if (++digits >= LONG_NUMBER_DIGITS) longNumber = true;
      continue;
    }
    switch (c) {
      case 0x22:
        i = closingQuote(text, i);
        break;
      case 0x7b:
      case 0x5b:
        depth++;
        if (depth > maxDepth) maxDepth = depth;
        break;
      case 0x7d:
      case 0x5d:
        depth--;
        break;
      case 0x2e:
        continue;
      case 0x65:
      case 0x45:
        if (digits > 0 && exponentDigits(text, i + 1) >= LONG_EXPONENT_DIGITS) longNumber = true;
        break;
      case 0x4e:
      case 0x49:
        nonFinite = true;
        break;
    }
    digits = 0;
  }
  return { depth: maxDepth, nonFinite, longNumber };
}

/**
 * The index of the quote that closes the string opened at `open`, or the
 * text's length when none does (`JSON.parse` refuses that text): strings are
 * most of an event, and the native `indexOf` crosses them far faster than a
 * loop over their characters. A quote after an odd run of backslashes is
 * escaped; every backslash is counted once, so this stays linear.
 */
function closingQuote(text: string, open: number): number {
  for (let from = open + 1; ; ) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return text.length;
    let backslashes = 0;
    while (quote - backslashes - 1 > open && text.charCodeAt(quote - backslashes - 1) === 0x5c)
      backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

function exponentDigits(text: string, from: number): number {
  let i = from;
  const sign = text.charCodeAt(i);
  if (sign === 0x2b || sign === 0x2d) i++;
  const start = i;
  while (i < text.length && i - start < LONG_EXPONENT_DIGITS) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    i++;
  }
  return i - start;
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
  // The value must equal what its text reads back as: JSON has no -0, and a huge literal is Infinity.
  if (typeof value === "number") return Number.isFinite(value) ? value + 0 : null;
  if (Array.isArray(value)) return value.map(cleanStrings);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[cleanString(key)] = cleanStrings(inner);
    return out;
  }
  return value;
}
