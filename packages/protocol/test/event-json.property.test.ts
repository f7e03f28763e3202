import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type EventJsonResult, parseEventJson } from "../src/event-json.ts";
import { timed } from "./timed.ts";

const SEED = 0x5e1ce;
const MAX_DEPTH = 128;

/** 50 ms plus 40 ns a byte: 2x what V8 needs for flat JSON on a loaded 2-core machine. */
// Generous on purpose: the budget catches superlinear work (seconds), not a loaded machine.
const budgetMs = (chars: number) => 150 + (chars * 160) / 1e6;

function depthOf(value: unknown): number {
  if (value === null || typeof value !== "object") return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  let deepest = 0;
  for (const child of children) deepest = Math.max(deepest, depthOf(child));
  return deepest + 1;
}

/** True when every string and key is something Postgres `jsonb` stores: no NUL, no lone surrogate. */
function jsonbSafe(value: unknown): boolean {
  if (typeof value === "string") return !value.includes("\u0000") && value.isWellFormed();
  if (value === null || typeof value !== "object") return true;
  if (Array.isArray(value)) return value.every(jsonbSafe);
  return Object.entries(value).every(([k, v]) => jsonbSafe(k) && jsonbSafe(v));
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/g;

/**
 * The number literals of a JSON text that Postgres `numeric` (and so `jsonb`)
 * refuses: a decimal exponent outside -16383..131071 ("value overflows numeric
 * format"), which JSON.parse itself accepts as Infinity or 0.
 */
function numbersJsonbRefuses(text: string): string[] {
  const bare = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const refused: string[] = [];
  for (const match of bare.matchAll(NUMBER)) {
    const [literal, fraction = "", exponent = "0"] = match;
    const digits = literal.replace(/^-/, "").replace(/[eE].*$/, "");
    const intPart = digits.split(".")[0] as string;
    const leadingZeros = /^0*/.exec(fraction)?.[0].length ?? 0;
    const significant = /^0+$/.test(digits.replace(".", ""))
      ? 0
      : intPart !== "0"
        ? intPart.length - 1
        : -(leadingZeros + 1);
    const position = significant + Number(exponent);
    if (!(position >= -16383 && position <= 131071)) refused.push(literal);
  }
  return refused;
}

function parseChecked(text: string): EventJsonResult {
  const { value: result, ms } = timed(() => parseEventJson(text, MAX_DEPTH));
  expect(ms, `parseEventJson of ${text.length} chars took ${ms.toFixed(1)} ms`).toBeLessThan(
    budgetMs(text.length),
  );
  if (!result.ok) {
    expect(typeof result.detail).toBe("string");
    expect(result.detail.length).toBeGreaterThan(0);
    return result;
  }
  const { value } = result;
  expect(value !== null && typeof value === "object" && !Array.isArray(value)).toBe(true);
  expect(depthOf(value)).toBeLessThanOrEqual(MAX_DEPTH);
  const stored: unknown = JSON.parse(result.text);
  expect(stored).toEqual(value);
  expect(jsonbSafe(stored)).toBe(true);
  const refused = numbersJsonbRefuses(result.text);
  expect(refused, `numbers Postgres jsonb refuses: ${refused.slice(0, 3).join(", ")}`).toEqual([]);
  return result;
}

const eventPayloads: string[] = (() => {
  const dir = new URL("./fixtures/sdk-captures/", import.meta.url).pathname;
  const out: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".jsonl"))) {
    for (const line of readFileSync(dir + file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      const raw = JSON.parse(line);
      const body =
        raw.body_raw_b64 !== undefined
          ? Buffer.from(raw.body_raw_b64, "base64").toString("utf8")
          : String(raw.body_raw ?? "");
      if (String(raw.path).includes("/store/")) out.push(body);
      else for (const part of body.split("\n")) if (part.startsWith('{"')) out.push(part);
    }
  }
  return out;
})();

const oddString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("\u0000", "\ud800", "\udc00x", "a\ud83d", "\u202e", "\uffff", "\\u0000"),
  fc.nat({ max: 20_000 }).map((n) => "\ud800".repeat(n)),
);

const keyName = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom("__proto__", "constructor", "toString", "prototype", "\u0000", "\ud800"),
);

const value = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: "small" },
    fc.jsonValue({ maxDepth: 1 }),
    oddString,
    fc.constantFrom(2 ** 63, -(2 ** 63), 1e308, -0, 5e-324),
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(keyName, tie("node"), { maxKeys: 4 }),
  ),
})).node;

/** JSON text with escapes a serializer would never write: `\u0000`, lone surrogate escapes, NaN. */
const rawText = fc.oneof(
  fc.dictionary(keyName, value, { maxKeys: 6 }).map((v) => JSON.stringify(v)),
  fc
    .tuple(
      fc.dictionary(keyName, value, { maxKeys: 4 }),
      fc.constantFrom(
        '"\\u0000"',
        '"\\ud800"',
        '"\\udfff\\u0000x"',
        "NaN",
        "Infinity",
        "-Infinity",
        '"NaN"',
        "[NaN,Infinity]",
        "1e999999",
        "-1e-99999",
        "1E400",
        "0.000e-999999",
      ),
    )
    .map(([v, raw]) => {
      const text = JSON.stringify(v);
      return text === "{}" ? `{"x":${raw}}` : `{"x":${raw},${text.slice(1)}`;
    }),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc
    .array(fc.constantFrom("{", "}", "[", "]", '"', ":", ",", "\\", "N", "I", "-", "1"), {
      maxLength: 200,
    })
    .map((parts) => parts.join("")),
);

describe("parseEventJson properties", () => {
  it("reads every real SDK event payload", () => {
    expect(eventPayloads.length).toBeGreaterThan(5);
    for (const payload of eventPayloads) expect(parseChecked(payload).ok).toBe(true);
  });

  it("never throws; what it returns is an object jsonb stores, equal to its text", () => {
    fc.assert(
      fc.property(rawText, (text) => {
        parseChecked(text);
      }),
      { seed: SEED, numRuns: 2_000 },
    );
  });

  it("keeps every value a serializer writes", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 5 })),
        (object) => {
          const text = JSON.stringify(object);
          const result = parseChecked(text);
          expect(result.ok && result.value).toEqual(JSON.parse(text));
        },
      ),
      { seed: SEED, numRuns: 1_000 },
    );
  });

  it("rejects nesting beyond the limit and accepts it up to the limit, fast", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constantFrom(10_000, 300_000)),
        fc.constantFrom("arrays", "objects", "open"),
        (depth, kind) => {
          const text =
            kind === "open"
              ? `{"a":${"[".repeat(depth)}`
              : kind === "arrays"
                ? `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`
                : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
          const result = parseChecked(text);
          const levels = kind === "objects" ? depth : depth + 1;
          if (kind !== "open") expect(result.ok).toBe(levels <= MAX_DEPTH);
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
    // 200 inputs of up to 300,000 levels: seconds of work on a loaded machine, bounded per input above.
  }, 60_000);

  it("parses long strings, many keys and huge numbers in time linear in their size", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400_000 }),
        fc.constantFrom("string", "keys", "numbers", "escapes"),
        (n, kind) => {
          const text =
            kind === "string"
              ? JSON.stringify({ a: "x".repeat(n * 4) })
              : kind === "keys"
                ? `{${Array.from({ length: n / 8 }, (_, i) => `"k${i}":1`).join(",")}}`
                : kind === "numbers"
                  ? `{"a":[${Array(Math.ceil(n / 8))
                      .fill("-1234567.891e-300")
                      .join(",")}]}`
                  : `{"a":"${"\\u0000\\ud800".repeat(Math.ceil(n / 12))}"}`;
          parseChecked(text);
        },
      ),
      { seed: SEED, numRuns: 40 },
    );
  });
});
