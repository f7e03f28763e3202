import { normalizeEvent } from "@sluice/protocol";
import { describe, expect, it } from "vitest";
import { hashEvent } from "./hash-event.ts";

const meta = { eventId: "a".repeat(32), timestamp: new Date(0), receivedAt: new Date(0) };
const hashes = (raw: Record<string, unknown>) =>
  hashEvent(normalizeEvent(raw, meta)).map((h) => h.hash);
const frame = (fn: string, line: string, inApp = true) => ({
  function: fn,
  filename: "/app/src/index.js",
  context_line: line,
  in_app: inApp,
  lineno: 1,
});
const error = (type: string, value: string, frames: object[]) => ({
  platform: "node",
  exception: { values: [{ type, value, stacktrace: { frames } }] },
});

describe("hashEvent", () => {
  it("groups errors by stack and type, not by message text", () => {
    const frames = [frame("main", "run()"), frame("boom", "throw new Error(x)")];
    expect(hashes(error("Error", "id 1 failed", frames))).toEqual(
      hashes(error("Error", "totally different", frames)),
    );
    expect(hashes(error("TypeError", "x", frames))).not.toEqual(
      hashes(error("Error", "x", frames)),
    );
  });

  it("separates the same error thrown at two sites", () => {
    const a = error("Error", "x", [frame("siteA", "throw new Error('x')")]);
    const b = error("Error", "x", [frame("siteB", "throw new Error('x')")]);
    expect(hashes(a)[0]).not.toBe(hashes(b)[0]);
  });

  it("ignores third-party frames in the app variant", () => {
    const mine = [frame("handler", "doIt()")];
    const a = error("Error", "x", [frame("lib1", "a()", false), ...mine]);
    const b = error("Error", "x", [frame("lib2", "b()", false), ...mine]);
    expect(hashes(a)[0]).toBe(hashes(b)[0]);
    expect(hashes(a)[1]).not.toBe(hashes(b)[1]);
  });

  it("falls back to the parameterized value without a stack trace", () => {
    expect(hashes(error("Error", "order 1231 failed", []))).toEqual(
      hashes(error("Error", "order 77 failed", [])),
    );
  });

  it("groups messages whose numbers differ", () => {
    expect(hashes({ message: "payment 1231 declined" })).toEqual(
      hashes({ message: "payment 77 declined" }),
    );
    expect(hashes({ message: "payment declined" })).not.toEqual(
      hashes({ message: "refund declined" }),
    );
  });

  it("lets a custom fingerprint replace the default and {{ default }} salt it", () => {
    const frames = [frame("boom", "throw x")];
    const custom = (type: string) =>
      hashes({ ...error(type, "x", frames), fingerprint: ["my-fingerprint"] });
    expect(custom("Error")).toEqual(custom("TypeError"));
    expect(custom("Error")).toHaveLength(1);
    const hybrid = (tag: string) =>
      hashes({ ...error("Error", "x", frames), fingerprint: ["{{ default }}", tag] });
    expect(hybrid("a")).not.toEqual(hybrid("b"));
    expect(hybrid("a")[0]).not.toBe(hashes(error("Error", "x", frames))[0]);
  });

  it("uses a legacy checksum verbatim", () => {
    expect(hashes({ checksum: "0123456789abcdef0123456789abcdef", message: "x" })).toEqual([
      "0123456789abcdef0123456789abcdef",
    ]);
  });
});
