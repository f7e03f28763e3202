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

  it("groups an empty or all-null fingerprint by default, not as one issue", () => {
    const frames = [frame("boom", "raise x")];
    const a = error("NameError", "x", frames);
    const b = error("TypeError", "y", [frame("other", "raise y")]);
    for (const fingerprint of [[], [null]]) {
      expect(hashes({ ...a, fingerprint })).toEqual(hashes(a));
      expect(hashes({ ...a, fingerprint })).not.toEqual(hashes({ ...b, fingerprint }));
    }
    expect(hashes({ message: "a", fingerprint: [] })).not.toEqual(
      hashes({ message: "b", fingerprint: [] }),
    );
  });

  it("groups JavaScript errors without in-app frames by their stack, not their message", () => {
    const js = (fn: string, value: string) => ({
      platform: "javascript",
      exception: {
        values: [{ type: "Error", value, stacktrace: { frames: [frame(fn, "go()", false)] } }],
      },
    });
    expect(hashes(js("render", "bad"))).not.toEqual(hashes(js("commit", "bad")));
    expect(hashes(js("render", "bad 1"))).toEqual(hashes(js("render", "other text")));
    expect(hashEvent(normalizeEvent(js("render", "bad"), meta)).map((h) => h.variant)).toEqual([
      "system",
    ]);
  });

  it("keeps the filename of file:// frames, drops it for http(s) URLs", () => {
    const at = (absPath: string) => ({
      platform: "javascript",
      stacktrace: { frames: [{ function: "run", abs_path: absPath, in_app: true }] },
    });
    expect(hashes(at("file:///app/a.js"))).not.toEqual(hashes(at("file:///app/b.js")));
    expect(hashes(at("https://x.test/a.js"))).toEqual(hashes(at("https://x.test/b.js")));
  });

  it("groups exception groups by the group and its distinct, parameterized children", () => {
    const child = (id: number, type: string, value: string) => ({
      type,
      value,
      mechanism: { type: "chained", exception_id: id, parent_id: 0 },
    });
    const group = (children: object[], value = "One or more errors occurred.") => ({
      exception: {
        values: [
          ...children,
          {
            type: "System.AggregateException",
            value,
            mechanism: { type: "generic", is_exception_group: true, exception_id: 0 },
          },
        ],
      },
    });
    const ab = hashes(group([child(2, "B", "Test 2"), child(1, "A", "Test 1")]));
    expect(hashes(group([child(2, "A", "Test 1"), child(1, "B", "Test 2")]))).toEqual(ab);
    expect(hashes(group([child(2, "B", "Test 7"), child(1, "A", "Test 8")]))).toEqual(ab);
    expect(hashes(group([child(2, "B", "Test 2"), child(1, "A", "Test 1")], "Other"))).not.toEqual(
      ab,
    );
    // Identical children fold into one, which then stands for the whole group.
    const twice = hashes(group([child(2, "A", "Test 1"), child(1, "A", "Test 2")]));
    expect(twice).toEqual(hashes({ exception: { values: [{ type: "A", value: "Test 1" }] } }));
  });

  it("applies the built-in Cocoa rules: app bundle frames are in-app, system block_invoke frames do not group", () => {
    const cocoa = (fns: [string, string | undefined][]) => ({
      platform: "cocoa",
      threads: {
        values: [
          {
            current: true,
            stacktrace: {
              frames: fns.map(([fn, pkg]) => ({ function: fn, package: pkg, in_app: false })),
            },
          },
        ],
      },
    });
    const app = "/private/var/containers/Bundle/Application/X/Foo.app/Foo";
    const base = hashes(cocoa([["main", app]]));
    expect(
      hashes(
        cocoa([
          ["main", app],
          ["__0_block_invoke_2", undefined],
        ]),
      ),
    ).toEqual(base);
    expect(
      hashes(
        cocoa([
          ["main", app],
          ["__0_block_invoke_2", app],
        ]),
      ),
    ).not.toEqual(base);
    const lib = "/usr/lib/libfoo.dylib";
    expect(
      hashes(
        cocoa([
          ["main", app],
          ["a", lib],
        ]),
      )[0],
    ).toBe(
      hashes(
        cocoa([
          ["main", app],
          ["b", lib],
        ]),
      )[0],
    );
  });

  it("groups CSP reports by directive and blocked host, not by message text", () => {
    const csp = (blocked: string, message: string) => ({
      logentry: { formatted: message },
      csp: { effective_directive: "script-src", blocked_uri: blocked },
    });
    expect(hashes(csp("https://cdn.test/a.js", "Blocked 'script' from 'cdn.test'"))).toEqual(
      hashes(csp("https://cdn.test/b.js?x=1", "something else")),
    );
    expect(hashes(csp("https://cdn.test/a.js", "m"))).not.toEqual(
      hashes(csp("https://other.test/a.js", "m")),
    );
  });

  it("groups every JavaScript ChunkLoadError as one issue (Sentry's built-in fingerprint rule)", () => {
    const chunk = (type: string, value: string, fn: string) => ({
      ...error(type, value, [frame(fn, "load()")]),
      platform: "javascript",
    });
    const a = hashes(chunk("ChunkLoadError", "Loading chunk 1 failed", "a"));
    expect(a).toEqual(hashes(chunk("ChunkLoadError", "Loading chunk 7 failed", "b")));
    expect(a).toEqual(hashes(chunk("Error", "ChunkLoadError: Loading chunk 7 failed", "c")));
    expect(hashes({ ...chunk("ChunkLoadError", "x", "a"), platform: "python" })).not.toEqual(a);
  });

  it("applies the built-in Java rules: framework modules are not in-app, Sentry SDK frames do not group", () => {
    const java = (frames: [string, string, boolean][]) => ({
      platform: "java",
      exception: {
        values: [
          {
            type: "IllegalStateException",
            value: "x",
            stacktrace: {
              frames: frames.map(([module, fn, inApp]) => ({
                module,
                function: fn,
                in_app: inApp,
              })),
            },
          },
        ],
      },
    });
    const mine: [string, string, boolean] = ["com.acme.Billing", "charge", true];
    const spring: [string, string, boolean] = ["org.springframework.web.Servlet", "service", true];
    expect(hashes(java([spring, mine]))[0]).toBe(
      hashes(java([["org.springframework.web.Other", "run", true], mine]))[0],
    );
    expect(hashes(java([["io.sentry.Hub", "capture", true], spring, mine]))).toEqual(
      hashes(java([spring, mine])),
    );
  });
});
