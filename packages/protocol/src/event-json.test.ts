import { describe, expect, it } from "vitest";
import { parseBoundedJson, parseEventJson } from "./event-json.ts";

describe("parseEventJson", () => {
  it("returns the input text untouched when Postgres accepts it", () => {
    const text = '{"message":"ok","extra":{"a":[1,2,{"b":"x\\u00e9"}]}}';
    expect(parseEventJson(text, 10)).toEqual({ ok: true, value: JSON.parse(text), text });
  });

  it("translates bare NaN and Infinity to null, but not inside strings", () => {
    const result = parseEventJson('{"a":NaN,"b":-Infinity,"c":"NaN Infinity"}', 10);
    expect(result).toMatchObject({ ok: true, value: { a: null, b: null, c: "NaN Infinity" } });
  });

  it("strips NUL and lone surrogates that jsonb refuses", () => {
    const result = parseEventJson('{"m":"a\\u0000b","s":"x\\ud800y","ok":"\\ud83d\\ude00"}', 10);
    expect(result.ok && JSON.parse(result.text)).toEqual({ m: "ab", s: "x\ufffdy", ok: "😀" });
  });

  it("rejects deep nesting, non-objects and broken JSON", () => {
    expect(parseEventJson(`{"a":${"[".repeat(20)}${"]".repeat(20)}}`, 10)).toMatchObject({
      ok: false,
      detail: /deeper than 10/,
    });
    expect(parseEventJson('{"a":"[[[[[[[[[[[[[[[["}', 10).ok).toBe(true);
    expect(parseEventJson("[1,2]", 10)).toMatchObject({ ok: false });
    expect(parseEventJson("{oops", 10)).toMatchObject({ ok: false, detail: /invalid JSON/ });
  });

  it("tells a string's escaped quotes from the one that closes it when counting depth", () => {
    // Brackets inside strings never count, whatever escapes come before them.
    expect(parseEventJson(String.raw`{"a":"\\\"[[","b":1}`, 1).ok).toBe(true);
    expect(parseEventJson(String.raw`{"a":"[\"[\\\"[","b":"x"}`, 1).ok).toBe(true);
    // An even run of backslashes leaves the quote closing: the brackets after it count.
    expect(parseEventJson(String.raw`{"a":"x\\\\","b":[[1]]}`, 2)).toMatchObject({
      ok: false,
      detail: /deeper than 2/,
    });
    expect(parseEventJson(String.raw`{"a":"\\","b":[[1]]}`, 3).ok).toBe(true);
    expect(parseEventJson('{"a":"never closed [[[[', 1)).toMatchObject({ ok: false });
  });
});

describe("parseBoundedJson", () => {
  it("parses JSON within a size and depth, and refuses the rest before parsing", () => {
    expect(parseBoundedJson('{"a":[1]}', 100, 2)).toEqual({ ok: true, value: { a: [1] } });
    expect(parseBoundedJson('{"a":[[1]]}', 100, 2)).toMatchObject({ ok: false, detail: /deeper/ });
    expect(parseBoundedJson("x".repeat(101), 100, 2)).toMatchObject({
      ok: false,
      detail: /longer than 100/,
    });
    expect(parseBoundedJson("{nope", 100, 2)).toMatchObject({ ok: false, detail: /invalid JSON/ });
    const started = performance.now();
    expect(parseBoundedJson("[".repeat(10_000_000), 20_000_000, 128).ok).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });
});
