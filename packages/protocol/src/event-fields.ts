import { LONG_EXPONENT_DIGITS, LONG_NUMBER_DIGITS } from "./event-json.ts";

/**
 * The top-level fields ingest reads from an event payload. A field absent
 * from the payload is `undefined`; a present one is what `JSON.parse` would
 * give for it (last occurrence wins, as there).
 */
export type EventFields = {
  event_id: unknown;
  timestamp: unknown;
  type: unknown;
};

const OBJECT = 1;
const ARRAY = 2;

// What the scanner expects next.
const KEY_OR_END = 0; // after `{`
const KEY = 1; // after `,` in an object
const VALUE = 2;
const VALUE_OR_END = 3; // after `[`
const AFTER_VALUE = 4;

const NO_FIELD = 0;
const EVENT_ID = 1;
const TIMESTAMP = 2;
const TYPE = 3;

/**
 * Reads `event_id`, `timestamp` and `type` from an event payload's UTF-8
 * bytes in one pass that builds no objects, or returns null when the payload
 * needs `parseEventJson` (event-json.ts), which decides and explains. It
 * returns fields only when all of this holds, so that `parseEventJson` would
 * keep the text as it is and read the same fields:
 * - the bytes are JSON (RFC 8259, as strict as `JSON.parse`) whose top level
 *   is an object, nested at most `maxDepth` levels; the caller has checked
 *   that they are valid UTF-8 (`isUtf8`);
 * - no string has an escape that `jsonb` refuses or that needs rewriting
 *   (`\u0000`, `\uD800`–`\uDFFF`), no number is long enough to fall outside
 *   Postgres `numeric`, and there is no `NaN` or `Infinity`;
 * - no top-level key has an escape, and the three fields, where present, are
 *   strings without escapes, numbers, booleans or null.
 * Linear in the payload's length; memory is O(`maxDepth`).
 */
export function scanEventFields(bytes: Buffer, maxDepth: number): EventFields | null {
  const n = bytes.length;
  const containers = new Uint8Array(maxDepth + 1);
  const fields: EventFields = { event_id: undefined, timestamp: undefined, type: undefined };
  let depth = 0;
  let state = VALUE;
  let field = NO_FIELD;
  let i = 0;
  for (;;) {
    // Whitespace is skipped inline here and after keys: a helper called per
    // token made the scan half again as slow.
    let c = bytes[i];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = bytes[++i];
    if (c === undefined) return null;
    if (state === AFTER_VALUE) {
      const container = containers[depth];
      if (c === 0x2c) {
        state = container === OBJECT ? KEY : VALUE;
        i++;
        continue;
      }
      if ((c === 0x7d && container === OBJECT) || (c === 0x5d && container === ARRAY)) {
        i++;
        if (--depth === 0) break;
        continue;
      }
      return null;
    }
    if (state === KEY_OR_END || state === KEY) {
      if (c === 0x7d && state === KEY_OR_END) {
        i++;
        if (--depth === 0) break;
        state = AFTER_VALUE;
        continue;
      }
      if (c !== 0x22) return null;
      const close = stringEnd(bytes, i + 1);
      if (close < 0) return null;
      field = NO_FIELD;
      if (depth === 1) {
        if (hasBackslash(bytes, i + 1, close)) return null;
        field = fieldOf(bytes, i + 1, close);
      }
      i = close + 1;
      c = bytes[i];
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = bytes[++i];
      if (c !== 0x3a) return null;
      i++;
      state = VALUE;
      continue;
    }
    if (state === VALUE_OR_END && c === 0x5d) {
      i++;
      if (--depth === 0) break;
      state = AFTER_VALUE;
      continue;
    }
    // A value.
    const captured = depth === 1 ? field : NO_FIELD;
    field = NO_FIELD;
    if (c === 0x7b || c === 0x5b) {
      if (captured !== NO_FIELD || depth >= maxDepth || (depth === 0 && c === 0x5b)) return null;
      containers[++depth] = c === 0x7b ? OBJECT : ARRAY;
      state = c === 0x7b ? KEY_OR_END : VALUE_OR_END;
      i++;
      continue;
    }
    if (depth === 0) return null; // the top level must be an object
    let value: unknown;
    const start = i;
    if (c === 0x22) {
      const close = stringEnd(bytes, i + 1);
      if (close < 0) return null;
      if (captured !== NO_FIELD) {
        if (hasBackslash(bytes, start + 1, close)) return null;
        value = bytes.toString("utf8", start + 1, close);
      }
      i = close + 1;
    } else if (c === 0x74) {
      if (!literal(bytes, i, TRUE)) return null;
      i += 4;
      value = true;
    } else if (c === 0x66) {
      if (!literal(bytes, i, FALSE)) return null;
      i += 5;
      value = false;
    } else if (c === 0x6e) {
      if (!literal(bytes, i, NULL)) return null;
      i += 4;
      value = null;
    } else {
      i = numberEnd(bytes, i);
      if (i < 0) return null;
      if (captured !== NO_FIELD) value = Number(bytes.toString("latin1", start, i));
    }
    if (captured === EVENT_ID) fields.event_id = value;
    else if (captured === TIMESTAMP) fields.timestamp = value;
    else if (captured === TYPE) fields.type = value;
    state = AFTER_VALUE;
  }
  let c = bytes[i];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = bytes[++i];
  return i === n ? fields : null;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function literal(bytes: Uint8Array, at: number, word: number[]): boolean {
  for (let k = 0; k < word.length; k++) if (bytes[at + k] !== word[k]) return false;
  return true;
}

function hasBackslash(bytes: Uint8Array, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (bytes[k] === 0x5c) return true;
  return false;
}

/**
 * The index of the quote closing the string whose content starts at `from`
 * (just after its opening quote), or -1 for an invalid string (a raw control
 * character, a bad escape, no closing quote) or one with an escape that
 * `parseEventJson` must rewrite (`\u0000`, a surrogate).
 */
function stringEnd(bytes: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    // Most of a payload is plain string content: one table load per byte.
    while (STRING_STOP[bytes[i] as number] === 0) i++;
    const c = bytes[i];
    if (c === undefined || c < 0x20) return -1;
    if (c === 0x22) return i;
    if (c === 0x5c) {
      const e = bytes[i + 1];
      if (e === 0x75) {
        let code = 0;
        for (let k = 2; k < 6; k++) {
          const h = hexValue(bytes[i + k]);
          if (h < 0) return -1;
          code = code * 16 + h;
        }
        if (code === 0 || (code >= 0xd800 && code <= 0xdfff)) return -1;
        i += 6;
        continue;
      }
      if (
        e !== 0x22 &&
        e !== 0x5c &&
        e !== 0x2f &&
        e !== 0x62 &&
        e !== 0x66 &&
        e !== 0x6e &&
        e !== 0x72 &&
        e !== 0x74
      )
        return -1;
      i += 2;
      continue;
    }
    i++;
  }
}

/** 1 for the bytes that end a run of plain string content: control characters, `"` and `\\`. */
const STRING_STOP = new Uint8Array(256).map((_, c) =>
  c < 0x20 || c === 0x22 || c === 0x5c ? 1 : 0,
);

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** The end of the number starting at `at` (RFC 8259 §6), or -1 if it is not one or is too long. */
function numberEnd(bytes: Uint8Array, at: number): number {
  let i = at;
  if (bytes[i] === 0x2d) i++;
  const first = bytes[i];
  if (first === 0x30) i++;
  else if (first !== undefined && first >= 0x31 && first <= 0x39) i = digitsEnd(bytes, i);
  else return -1;
  if (bytes[i] === 0x2e) {
    const fraction = digitsEnd(bytes, i + 1);
    if (fraction === i + 1) return -1;
    i = fraction;
  }
  if (i - at >= LONG_NUMBER_DIGITS) return -1;
  const e = bytes[i];
  if (e === 0x65 || e === 0x45) {
    i++;
    if (bytes[i] === 0x2b || bytes[i] === 0x2d) i++;
    const exponent = digitsEnd(bytes, i);
    if (exponent === i || exponent - i >= LONG_EXPONENT_DIGITS) return -1;
    i = exponent;
  }
  return i;
}

function digitsEnd(bytes: Uint8Array, from: number): number {
  let i = from;
  for (let c = bytes[i]; c !== undefined && c >= 0x30 && c <= 0x39; c = bytes[++i]);
  return i;
}

function fieldOf(bytes: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length === 8 && matches(bytes, start, EVENT_ID_KEY)) return EVENT_ID;
  if (length === 9 && matches(bytes, start, TIMESTAMP_KEY)) return TIMESTAMP;
  if (length === 4 && matches(bytes, start, TYPE_KEY)) return TYPE;
  return NO_FIELD;
}

const EVENT_ID_KEY = Buffer.from("event_id");
const TIMESTAMP_KEY = Buffer.from("timestamp");
const TYPE_KEY = Buffer.from("type");

function matches(bytes: Uint8Array, start: number, key: Uint8Array): boolean {
  for (let k = 0; k < key.length; k++) if (bytes[start + k] !== key[k]) return false;
  return true;
}
