import { parseBoundedJson } from "./event-json.ts";

/** Item headers of an envelope item; unknown keys are kept. */
export type ItemHeaders = {
  type: string;
  length?: number;
  content_type?: string;
  filename?: string;
  attachment_type?: string;
  [key: string]: unknown;
};

export type EnvelopeItem = { headers: ItemHeaders; payload: Buffer };

/** Envelope headers (`event_id`, `dsn`, `sdk`, `sent_at`, `trace`, ...). */
export type EnvelopeHeaders = Record<string, unknown>;

export type Envelope = { headers: EnvelopeHeaders; items: EnvelopeItem[] };

export type ParseEnvelopeResult = { ok: true; envelope: Envelope } | { ok: false; detail: string };

export type ParseEnvelopeHeaderResult =
  | { ok: true; headers: EnvelopeHeaders }
  | { ok: false; detail: string };

/**
 * Longest envelope or item header line (bytes). Relay reads header lines with
 * serde_json and no size of their own; real headers (dsn, sdk, trace context,
 * attachment names) are a few hundred bytes, so 64 KiB bounds the JSON parse
 * of a hostile line without refusing any SDK's.
 */
export const MAX_HEADER_LINE_BYTES = 64 * 1024;
/** Deepest nesting in a header line (the `trace` and `sdk` headers nest 3 levels). */
export const MAX_HEADER_DEPTH = 32;
/** Items per envelope: every item costs a header parse, so their number is bounded too. */
export const MAX_ENVELOPE_ITEMS = 10_000;

const NEWLINE = 0x0a;

/**
 * Parses an envelope header line (the bytes before the first newline), with
 * the size and depth bounds of `parseEnvelope`, so that the key in its `dsn`
 * can be checked before the rest of the body is read. Never throws.
 */
export function parseEnvelopeHeader(line: Buffer): ParseEnvelopeHeaderResult {
  const parsed = parseHeaderLine(line, 0, line.length);
  if (parsed.ok) return { ok: true, headers: parsed.value };
  return { ok: false, detail: headerProblem("envelope header", parsed.problem) };
}

/**
 * Parses the envelope framing of a decompressed body: a header line, then
 * items of one header line and a payload each. A payload runs for exactly
 * `length` bytes when the item header has one (the next byte must be a
 * newline or the end), else to the next newline. Trailing newline optional;
 * zero items is valid; blank lines between items are tolerated; item types
 * are not checked here. Payloads are views into `body`, not copies.
 * Source: develop.sentry.dev sdk/foundations/transport/envelopes,
 * relay-server/src/envelope/mod.rs (docs/protocol.md §3.1).
 */
export function parseEnvelope(body: Buffer): ParseEnvelopeResult {
  if (body.length === 0) return { ok: false, detail: "empty envelope" };
  const headerEnd = headerLineEnd(body, 0);
  const parsedHeaders = parseHeaderLine(body, 0, headerEnd);
  if (!parsedHeaders.ok) {
    return { ok: false, detail: headerProblem("envelope header", parsedHeaders.problem) };
  }
  const headers = parsedHeaders.value;

  const items: EnvelopeItem[] = [];
  let pos = headerEnd + 1;
  while (pos < body.length) {
    if (body[pos] === NEWLINE) {
      pos += 1;
      continue;
    }
    if (items.length >= MAX_ENVELOPE_ITEMS) {
      return { ok: false, detail: `envelope has more than ${MAX_ENVELOPE_ITEMS} items` };
    }
    const end = headerLineEnd(body, pos);
    const parsedItem = parseHeaderLine(body, pos, end);
    if (!parsedItem.ok) {
      return { ok: false, detail: headerProblem(`item header at byte ${pos}`, parsedItem.problem) };
    }
    const itemHeaders = parsedItem.value;
    if (typeof itemHeaders.type !== "string" || itemHeaders.type === "") {
      return { ok: false, detail: `item header at byte ${pos} has no type` };
    }
    pos = end + 1;
    const length = itemHeaders.length;
    if (length !== undefined && length !== null) {
      if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
        return { ok: false, detail: `invalid length in ${itemHeaders.type} item header` };
      }
      if (pos + length > body.length) {
        return {
          ok: false,
          detail: `${itemHeaders.type} item declares ${length} bytes but the envelope ends first`,
        };
      }
      const payload = body.subarray(pos, pos + length);
      pos += length;
      if (pos < body.length && body[pos] !== NEWLINE) {
        return {
          ok: false,
          detail: `${itemHeaders.type} item payload is longer than its declared length ${length}`,
        };
      }
      pos += 1;
      items.push({ headers: itemHeaders as ItemHeaders, payload });
    } else {
      const payloadEnd = pos >= body.length ? body.length : lineEnd(body, pos);
      items.push({ headers: itemHeaders as ItemHeaders, payload: body.subarray(pos, payloadEnd) });
      pos = payloadEnd + 1;
    }
  }
  return { ok: true, envelope: { headers, items } };
}

type FramingState = "envelopeHeader" | "itemHeader" | "payload" | "afterPayload" | "linePayload";

/**
 * Checks an envelope's framing while its bytes arrive, so that a body whose
 * framing is already wrong (an item header past `MAX_HEADER_LINE_BYTES` or
 * too deep, an item without type, a bad `length`, more than
 * `MAX_ENVELOPE_ITEMS` items) is refused before the rest is decoded. It
 * applies `parseEnvelope`'s rules with its messages, and finds no problem
 * `parseEnvelope` would not; `parseEnvelope` still reads the whole body.
 */
export class EnvelopeFramingCheck {
  private state: FramingState = "envelopeHeader";
  private position = 0;
  private line: Buffer[] = [];
  private lineBytes = 0;
  private lineStart = 0;
  private remaining = 0;
  private items = 0;
  private itemType = "";
  private itemLength = 0;

  /** Feeds the next bytes of the body; returns the first problem found, or null. */
  push(chunk: Buffer): string | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "payload") {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.state = "afterPayload";
      } else if (this.state === "afterPayload") {
        if (chunk[i] !== NEWLINE) {
          return `${this.itemType} item payload is longer than its declared length ${this.itemLength}`;
        }
        i += 1;
        this.state = "itemHeader";
      } else if (this.state === "linePayload") {
        const index = chunk.indexOf(NEWLINE, i);
        i = index < 0 ? chunk.length : index + 1;
        if (index >= 0) this.state = "itemHeader";
      } else {
        if (this.state === "itemHeader" && this.lineBytes === 0 && chunk[i] === NEWLINE) {
          i += 1;
          continue;
        }
        if (this.lineBytes === 0) this.lineStart = this.position + i;
        const index = chunk.indexOf(NEWLINE, i);
        const end = index < 0 ? chunk.length : index;
        this.lineBytes += end - i;
        const what =
          this.state === "envelopeHeader"
            ? "envelope header"
            : `item header at byte ${this.lineStart}`;
        if (this.lineBytes > MAX_HEADER_LINE_BYTES) return headerProblem(what, "long");
        this.line.push(chunk.subarray(i, end));
        if (index < 0) {
          i = chunk.length;
          continue;
        }
        i = index + 1;
        const problem = this.endHeaderLine(what);
        if (problem) return problem;
      }
    }
    this.position += chunk.length;
    return null;
  }

  private endHeaderLine(what: string): string | null {
    const line = Buffer.concat(this.line, this.lineBytes);
    this.line = [];
    this.lineBytes = 0;
    if (this.state === "itemHeader" && this.items >= MAX_ENVELOPE_ITEMS) {
      return `envelope has more than ${MAX_ENVELOPE_ITEMS} items`;
    }
    const parsed = parseHeaderLine(line, 0, line.length);
    if (!parsed.ok) return headerProblem(what, parsed.problem);
    if (this.state === "envelopeHeader") {
      this.state = "itemHeader";
      return null;
    }
    this.items += 1;
    const { type, length } = parsed.value;
    if (typeof type !== "string" || type === "") return `${what} has no type`;
    if (length === undefined || length === null) {
      this.state = "linePayload";
      return null;
    }
    if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
      return `invalid length in ${type} item header`;
    }
    this.itemType = type;
    this.itemLength = length;
    this.remaining = length;
    this.state = length === 0 ? "afterPayload" : "payload";
    return null;
  }
}

function lineEnd(body: Buffer, from: number): number {
  const index = body.indexOf(NEWLINE, from);
  return index < 0 ? body.length : index;
}

/** End of a header line, looking no further than one byte past the longest allowed line. */
function headerLineEnd(body: Buffer, from: number): number {
  const limit = Math.min(body.length, from + MAX_HEADER_LINE_BYTES + 1);
  const index = body.subarray(from, limit).indexOf(NEWLINE);
  return index < 0 ? limit : from + index;
}

type HeaderProblem = "long" | "deep" | "invalid";

function headerProblem(what: string, problem: HeaderProblem): string {
  if (problem === "long") return `${what} is longer than ${MAX_HEADER_LINE_BYTES} bytes`;
  if (problem === "deep") return `${what} nests deeper than ${MAX_HEADER_DEPTH} levels`;
  return what === "envelope header"
    ? "invalid envelope header: expected a JSON object"
    : `invalid ${what}`;
}

function parseHeaderLine(
  body: Buffer,
  start: number,
  end: number,
): { ok: true; value: Record<string, unknown> } | { ok: false; problem: HeaderProblem } {
  if (end - start > MAX_HEADER_LINE_BYTES) return { ok: false, problem: "long" };
  const parsed = parseBoundedJson(
    body.subarray(start, end),
    MAX_HEADER_LINE_BYTES,
    MAX_HEADER_DEPTH,
  );
  if (!parsed.ok) return { ok: false, problem: parsed.reason === "depth" ? "deep" : "invalid" };
  const value = parsed.value;
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? { ok: true, value: value as Record<string, unknown> }
    : { ok: false, problem: "invalid" };
}
