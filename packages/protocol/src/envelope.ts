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

const NEWLINE = 0x0a;

/**
 * Parses the envelope framing of a decompressed body: a header line, then
 * items of one header line and a payload each. A payload runs for exactly
 * `length` bytes when the item header has one (the next byte must be a
 * newline or the end), else to the next newline. Trailing newline optional;
 * zero items is valid; blank lines between items are tolerated; item types
 * are not checked here. Payloads are views into `body`, not copies.
 * Source: develop.sentry.dev sdk/foundations/transport/envelopes,
 * relay-server/src/envelope/mod.rs (SENTRY_PROTOCOL.md §3.1).
 */
export function parseEnvelope(body: Buffer): ParseEnvelopeResult {
  if (body.length === 0) return { ok: false, detail: "empty envelope" };
  const headerEnd = lineEnd(body, 0);
  const headers = parseHeaderLine(body, 0, headerEnd);
  if (!headers) return { ok: false, detail: "invalid envelope header: expected a JSON object" };

  const items: EnvelopeItem[] = [];
  let pos = headerEnd + 1;
  while (pos < body.length) {
    if (body[pos] === NEWLINE) {
      pos += 1;
      continue;
    }
    const end = lineEnd(body, pos);
    const itemHeaders = parseHeaderLine(body, pos, end);
    if (!itemHeaders) return { ok: false, detail: `invalid item header at byte ${pos}` };
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

function lineEnd(body: Buffer, from: number): number {
  const index = body.indexOf(NEWLINE, from);
  return index < 0 ? body.length : index;
}

function parseHeaderLine(body: Buffer, start: number, end: number): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(body.toString("utf8", start, end));
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
