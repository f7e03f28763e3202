import { isUtf8 } from "node:buffer";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scanEventFields } from "./event-fields.ts";
import { parseEventJson } from "./event-json.ts";

const DEPTH = 8;

/** What the scan promises: it answers only where `parseEventJson` keeps the text and reads the same fields. */
function agreesWithParse(text: string): boolean {
  const bytes = Buffer.from(text, "utf8");
  const fields = isUtf8(bytes) ? scanEventFields(bytes, DEPTH) : null;
  if (fields === null) return true;
  const parsed = parseEventJson(text, DEPTH);
  if (!parsed.ok || parsed.text !== text) return false;
  return (
    Object.is(fields.event_id, parsed.value.event_id) &&
    Object.is(fields.timestamp, parsed.value.timestamp) &&
    Object.is(fields.type, parsed.value.type)
  );
}

const fieldValue = fc.oneof(
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.uuid(),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const eventObject = fc
  .record(
    {
      event_id: fieldValue,
      timestamp: fieldValue,
      type: fieldValue,
      extra: fc.jsonValue({ maxDepth: DEPTH + 1 }),
    },
    { requiredKeys: [] },
  )
  .map((value) => JSON.stringify(value));
const spaced = eventObject.chain((text) =>
  fc
    .array(fc.constantFrom(" ", "\n", "\t", "\r"), { maxLength: 3 })
    .map((ws) => `${ws.join("")}${text.replaceAll(",", `${ws.join("")},`)}${ws.join("")}`),
);
/** A valid document with one to three characters deleted, replaced or inserted: mostly invalid JSON. */
const mutated = eventObject.chain((text) =>
  fc
    .array(
      fc.tuple(
        fc.nat({ max: text.length }),
        fc.boolean(),
        fc.constantFrom("", ...'{}[]":,\\ 0-.eE+tfnu\u0001x\u00e9'),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((edits) =>
      edits.reduce(
        (t, [at, replace, ch]) => t.slice(0, at) + ch + t.slice(replace ? at + 1 : at),
        text,
      ),
    ),
);

describe("scanEventFields", () => {
  it("answers only where parseEventJson keeps the text, with the same fields", () => {
    fc.assert(fc.property(fc.oneof(eventObject, spaced, mutated), agreesWithParse), {
      numRuns: 20_000,
    });
    fc.assert(fc.property(fc.json({ maxDepth: DEPTH + 2 }), agreesWithParse), { numRuns: 5_000 });
  });

  it("answers for plain events, nested to the limit and no further", () => {
    fc.assert(
      fc.property(
        fc.record({
          event_id: fc.uuid(),
          timestamp: fc.double({ noNaN: true, noDefaultInfinity: true }),
          level: fc.string(),
        }),
        (event) => {
          const text = JSON.stringify(event);
          expect(scanEventFields(Buffer.from(text), DEPTH)).toEqual({
            event_id: event.event_id,
            timestamp: JSON.parse(text).timestamp,
            type: undefined,
          });
        },
      ),
    );
    const nested = (levels: number) => `{"a":${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}}`;
    expect(scanEventFields(Buffer.from(nested(DEPTH)), DEPTH)).not.toBeNull();
    expect(scanEventFields(Buffer.from(nested(DEPTH + 1)), DEPTH)).toBeNull();
  });

  it("reads a real SDK event, last occurrence winning", () => {
    const capture = new URL(
      "../test/fixtures/sdk-captures/node-sdk-uncaught.jsonl",
      import.meta.url,
    );
    const line = readFileSync(capture, "utf8")
      .split("\n")
      .find((l) => l.includes('"seq": 2') || l.includes('"seq":2'));
    const raw = JSON.parse(line as string);
    const body: string = raw.body_raw ?? Buffer.from(raw.body_raw_b64, "base64").toString();
    const item = body.split("\n")[2] as string;
    const event = JSON.parse(item);
    expect(scanEventFields(Buffer.from(item), 128)).toEqual({
      event_id: event.event_id,
      timestamp: event.timestamp,
      type: event.type,
    });
    expect(
      scanEventFields(Buffer.from('{"type":"x","event_id":"a","type":"transaction"}'), DEPTH),
    ).toEqual({ event_id: "a", timestamp: undefined, type: "transaction" });
  });

  it("leaves to parseEventJson what it must rewrite, explain or refuse", () => {
    for (const text of [
      '{"m":"a\\u0000b"}',
      '{"m":"\\ud83d\\ude00"}',
      '{"a":NaN}',
      `{"a":${"9".repeat(1000)}}`,
      '{"a":1e1000}',
      '{"event_\\u0069d":"x"}',
      '{"event_id":"a\\nb"}',

      '{"a":1,}',
      '{"a":01}',
      '{"a":"\u0001"}',
      "[1]",
      '"x"',
      '{"a":1} x',
      "\ufeff{}",
      "",
    ]) {
      expect(scanEventFields(Buffer.from(text), DEPTH), text).toBeNull();
    }
  });
});
