import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ParseEnvelopeResult, parseEnvelope } from "../src/envelope.ts";
import { timed } from "./timed.ts";

// Fixed seeds: a failure prints its counterexample and replays the same way on every machine.
const SEED = 0x5e1ce;

/**
 * Time a parse may take for `bytes` of input: 50 ms plus 40 ns a byte. V8
 * parses flat JSON at 5-25 ns a byte, so this is 2x headroom on a loaded
 * 2-core machine; nesting that allocates a value per byte costs 100-300 ns.
 */
// Generous on purpose: the budget catches superlinear work (seconds), not a loaded machine.
const budgetMs = (bytes: number, nsPerByte = 40) => 150 + (bytes * nsPerByte * 4) / 1e6;

/** Parses within the budget for its size and returns the result, checked for a documented shape. */
function parseChecked(body: Buffer, nsPerByte?: number): ParseEnvelopeResult {
  const { value, ms } = timed(() => parseEnvelope(body));
  expect(ms, `parseEnvelope of ${body.length} bytes took ${ms.toFixed(1)} ms`).toBeLessThan(
    budgetMs(body.length, nsPerByte),
  );
  expectShape(value, body);
  return value;
}

function expectShape(result: ParseEnvelopeResult, body: Buffer): void {
  if (!result.ok) {
    expect(typeof result.detail).toBe("string");
    expect(result.detail.length).toBeGreaterThan(0);
    return;
  }
  const { headers, items } = result.envelope;
  expect(headers !== null && typeof headers === "object" && !Array.isArray(headers)).toBe(true);
  let bytes = 0;
  for (const item of items) {
    expect(typeof item.headers.type).toBe("string");
    expect(item.headers.type.length).toBeGreaterThan(0);
    expect(Buffer.isBuffer(item.payload)).toBe(true);
    if (typeof item.headers.length === "number") {
      expect(item.payload.length).toBe(item.headers.length);
    }
    bytes += item.payload.length;
  }
  expect(bytes).toBeLessThanOrEqual(body.length);
}

type Capture = { file: string; seq: number; body: Buffer };

/** Every real SDK envelope of the fixtures (packages/protocol/test/fixtures/sdk-captures). */
function readEnvelopeCaptures(): Capture[] {
  const dir = new URL("./fixtures/sdk-captures/", import.meta.url).pathname;
  const out: Capture[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".jsonl"))) {
    for (const line of readFileSync(dir + file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      const raw = JSON.parse(line);
      if (!String(raw.path).includes("/envelope/")) continue;
      const body =
        raw.body_raw_b64 !== undefined
          ? Buffer.from(raw.body_raw_b64, "base64")
          : Buffer.from(raw.body_raw ?? "", "utf8");
      out.push({ file, seq: raw.seq, body });
    }
  }
  return out;
}

const captures = readEnvelopeCaptures();

type Part = { header: Record<string, unknown>; payload: Buffer };

/** Splits a well-formed capture into its header and items (the parser under test does the framing). */
function split(body: Buffer): { header: Record<string, unknown>; items: Part[] } {
  const parsed = parseEnvelope(body);
  if (!parsed.ok) throw new Error(`fixture does not parse: ${parsed.detail}`);
  return {
    header: { ...parsed.envelope.headers },
    items: parsed.envelope.items.map((i) => ({
      header: { ...i.headers },
      payload: Buffer.from(i.payload),
    })),
  };
}

function join(header: unknown, items: { header: unknown; payload: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`${rawJson(header)}\n`)];
  for (const item of items) {
    parts.push(Buffer.from(`${rawJson(item.header)}\n`), item.payload, Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

/** A header given as text is written as is (for nesting too deep to build as a value). */
const rawJson = (value: unknown) =>
  value instanceof RawJson ? value.text : (JSON.stringify(value) ?? "null");

class RawJson {
  constructor(readonly text: string) {}
}

const SPECIAL_TYPES = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "prototype",
  "event",
  "attachment",
  "transaction",
  "session",
  "sessions",
  "client_report",
  "user_report",
  "\u0000",
  "\u202eevent",
  "x".repeat(10_000),
];

const oddString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.constantFrom(
    "\u0000",
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\u202e\u2066",
    "%E0%A4%A",
    "%00",
    "\r\n",
    "\\",
    '"',
  ),
  fc.nat({ max: 200_000 }).map((n) => "é".repeat(n)),
);

const hugeNumber = fc.constantFrom(
  2 ** 63,
  -(2 ** 63),
  2 ** 53 + 1,
  1e308,
  -1e308,
  5e-324,
  -0,
  0.5,
  Number.MAX_SAFE_INTEGER,
);

const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  oddString,
  hugeNumber,
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
);

/** Text of JSON nested `depth` levels: open brackets only, balanced arrays, or objects. */
const deepJson = (depth: number, kind: "open" | "arrays" | "objects") =>
  kind === "open"
    ? "[".repeat(depth)
    : kind === "arrays"
      ? `${"[".repeat(depth)}${"]".repeat(depth)}`
      : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

type Mutation = (env: { header: Record<string, unknown>; items: Part[] }) => Buffer;

/** Structure-aware changes to a real envelope: its headers, lengths, types, items and bytes. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.string({ maxLength: 12 }), anyValue).map(
    ([key, value]): Mutation =>
      (env) =>
        join({ ...env.header, [key || "dsn"]: value }, env.items),
  ),
  anyValue.map(
    (value): Mutation =>
      (env) =>
        join(value, env.items),
  ),
  fc.tuple(fc.nat(), fc.oneof(hugeNumber, fc.integer(), anyValue)).map(
    ([index, length]): Mutation =>
      (env) =>
        join(
          env.header,
          env.items.map((item, i) =>
            i === index % Math.max(1, env.items.length)
              ? { header: { ...item.header, length }, payload: item.payload }
              : item,
          ),
        ),
  ),
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...SPECIAL_TYPES), oddString, anyValue)).map(
    ([index, type]): Mutation =>
      (env) =>
        join(
          env.header,
          env.items.map((item, i) =>
            i === index % Math.max(1, env.items.length)
              ? { header: { ...item.header, type }, payload: item.payload }
              : item,
          ),
        ),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 200 })).map(
    ([index, copies]): Mutation =>
      (env) => {
        const item = env.items[index % Math.max(1, env.items.length)];
        return join(env.header, item ? [...env.items, ...Array(copies).fill(item)] : env.items);
      },
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 5_000 })).map(
    ([index, depth]): Mutation =>
      (env) =>
        join(
          env.header,
          env.items.map((item, i) =>
            i === index % Math.max(1, env.items.length)
              ? { header: item.header, payload: Buffer.from(deepJson(depth, "arrays")) }
              : item,
          ),
        ),
  ),
  fc.tuple(fc.nat(), fc.nat()).map(
    ([at, drop]): Mutation =>
      (env) => {
        const body = join(env.header, env.items);
        const start = at % (body.length + 1);
        return Buffer.concat([body.subarray(0, start), body.subarray(start + (drop % 64))]);
      },
  ),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 32 })).map(
    ([at, bytes]): Mutation =>
      (env) => {
        const body = join(env.header, env.items);
        const start = at % (body.length + 1);
        return Buffer.concat([body.subarray(0, start), Buffer.from(bytes), body.subarray(start)]);
      },
  ),
  fc.nat().map(
    (at): Mutation =>
      (env) => {
        const body = join(env.header, env.items);
        return body.subarray(0, at % (body.length + 1));
      },
  ),
);

describe("parseEnvelope properties", () => {
  it("reads every real SDK envelope", () => {
    expect(captures.length).toBeGreaterThan(10);
    for (const capture of captures) {
      const result = parseChecked(capture.body);
      expect(result.ok, `${capture.file}#${capture.seq}`).toBe(true);
    }
  });

  it("never throws on arbitrary bytes, and answers a documented shape in bounded time", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 4096 }),
          fc
            .array(fc.oneof(fc.constantFrom("{", "}", "[", "]", "\n", '"', ":", ","), oddString))
            .map((parts) => new TextEncoder().encode(parts.join(""))),
        ),
        (bytes) => {
          parseChecked(Buffer.from(bytes));
        },
      ),
      { seed: SEED, numRuns: 2_000 },
    );
  });

  it("never throws on mutated real SDK envelopes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...captures),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        (capture, mutations) => {
          let body = capture.body;
          for (const mutate of mutations) {
            const result = parseEnvelope(body);
            body = result.ok ? mutate(split(body)) : mutate({ header: {}, items: [] });
          }
          parseChecked(body);
        },
      ),
      { seed: SEED, numRuns: 1_000 },
    );
  });

  it("frames what it was given: items with lengths come back byte for byte", () => {
    const item = fc.record({
      type: fc.constantFrom("event", "attachment", "session", "client_report", "log", "zzz"),
      payload: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
        fc.array(item, { maxLength: 8 }),
        (header, items) => {
          const body = join(
            header,
            items.map((i) => ({
              header: { type: i.type, length: i.payload.length },
              payload: Buffer.from(i.payload),
            })),
          );
          const result = parseChecked(body);
          expect(result.ok).toBe(true);
          if (!result.ok) return;
          expect(result.envelope.items.map((i) => [i.headers.type, [...i.payload]])).toEqual(
            items.map((i) => [i.type, [...i.payload]]),
          );
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  // Issue #11, item 1: nesting is bounded before parsing, in the envelope header and item headers.
  it("rejects headers nested beyond any sane depth, fast", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("open", "arrays", "objects") as fc.Arbitrary<"open" | "arrays" | "objects">,
        fc.constantFrom(1_000, 20_000, 300_000, 1_000_000),
        fc.boolean(),
        (kind, depth, inItemHeader) => {
          const deep = new RawJson(deepJson(depth, kind));
          const body = inItemHeader
            ? join({}, [{ header: deep, payload: Buffer.from("{}") }])
            : join(deep, [{ header: { type: "event" }, payload: Buffer.from("{}") }]);
          // A depth check before parsing costs a scan of a few ns a byte, not an allocation a level.
          const result = parseChecked(body, 10);
          expect(result.ok, `${kind} nesting of depth ${depth} was accepted`).toBe(false);
        },
      ),
      { seed: SEED, numRuns: 24 },
    );
  });

  it("answers item lengths of any size and type without throwing", () => {
    fc.assert(
      fc.property(fc.oneof(hugeNumber, fc.double(), fc.integer(), anyValue), (length) => {
        const body = join({}, [
          { header: { type: "attachment", length }, payload: Buffer.from("x") },
        ]);
        const result = parseChecked(body);
        if (result.ok) expect(result.envelope.items[0]?.payload.length).toBe(1);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
