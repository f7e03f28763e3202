import { jsonDepthExceeds } from "@sluice/protocol";
import { describe, expect, it } from "vitest";
import { findUnstorableText } from "./input.ts";

describe("jsonDepthExceeds", () => {
  it("counts arrays and objects, not brackets inside strings", () => {
    expect(jsonDepthExceeds(`${"[".repeat(64)}${"]".repeat(64)}`, 64)).toBe(false);
    expect(jsonDepthExceeds(`${"[".repeat(65)}${"]".repeat(65)}`, 64)).toBe(true);
    expect(jsonDepthExceeds(`{"a":"${"[".repeat(100)}","b":[{}]}`, 3)).toBe(false);
    expect(jsonDepthExceeds(`{"a":"\\"[[[[","b":[[[[]]]]}`, 4)).toBe(true);
  });

  it("stops at the first level too deep, so a bracket bomb costs little", () => {
    // A flat string (not a rope that the first character access would flatten).
    const bomb = Buffer.alloc(10_000_000, "[").toString("latin1");
    const started = performance.now();
    expect(jsonDepthExceeds(bomb, 64)).toBe(true);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe("findUnstorableText", () => {
  it("names the path of the first string or key Postgres cannot store", () => {
    expect(findUnstorableText({ a: [1, "ok", { b: "x\u0000" }] })).toBe("a.2.b");
    expect(findUnstorableText({ commits: [{ "i\u0000d": 1 }] })).toBe("commits.0.i\u0000d");
    expect(findUnstorableText(["\ud800"])).toBe("0");
    expect(findUnstorableText("\u0000")).toBe("body");
    expect(findUnstorableText({ ok: ["日本", "\ud83d\ude00", null, true] })).toBeNull();
  });
});
