import type { Frame } from "@sluice/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyStacktraceRules,
  BUILT_IN_STACKTRACE_RULES,
  parseStacktraceRules,
} from "./stacktrace-rules.ts";

const RULES = `
path:**/vendor/** -app
path:**/node_modules/** -app
package:**/Frameworks/Sentry.framework/** -app
path:?:/Program*Files/** -app
path:app/** +app
`;

describe("stack trace rules that remember path answers", () => {
  it("decide exactly as the same rules parsed fresh, for paths seen again and again", () => {
    const remembering = parseStacktraceRules(RULES, { rememberPaths: true }).rules;
    const segment = fc.constantFrom(
      "vendor",
      "node_modules",
      "app",
      "src",
      "Program Files",
      "x",
      "",
    );
    const path = fc
      .tuple(
        fc.constantFrom("", "/", "C:\\", "webpack:///", "app:///"),
        fc.array(segment, { maxLength: 5 }),
        fc.constantFrom("/", "\\"),
      )
      .map(([root, parts, separator]) => root + parts.join(separator));
    const frame = fc.record({
      abs_path: path,
      filename: path,
      package: path,
      function: fc.constant("f"),
    });
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), (frames) => {
        const fresh = parseStacktraceRules(RULES).rules;
        const initial = frames.map(() => undefined);
        for (let pass = 0; pass < 2; pass++) {
          expect(applyStacktraceRules(frames, initial, "node", null, remembering)).toEqual(
            applyStacktraceRules(frames, initial, "node", null, fresh),
          );
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("the built-in stack trace rules' remembered decisions", () => {
  it("are the decisions the rules make afresh, for stacks that differ in any field a rule reads", () => {
    // Small pools, so that stacks repeat and differ in one field at a time:
    // a key that left a field out would hand one stack another's decision.
    const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
    const frame = fc.record(
      {
        function: maybe(fc.constantFrom("runMicrotasks", "handler", "x_block_invoke_2", "main")),
        raw_function: maybe(fc.constantFrom("nextTick", "handler")),
        module: maybe(fc.constantFrom("@babel/core", "kotlinx.coroutines", "io.sentry.x", "app")),
        package: maybe(fc.constantFrom("/usr/lib/libc.so", "/Users/me/App", "libapp")),
        abs_path: maybe(fc.constantFrom("/app/node_modules/x.js", "/app/src/y.js", "app:///z.js")),
        filename: maybe(fc.constantFrom("x.js", "vendor/y.js", "/usr/local/lib/q")),
        platform: maybe(fc.constantFrom("node", "cocoa", "python", "java")),
      },
      { requiredKeys: [] },
    );
    const stack = fc.array(fc.tuple(frame, fc.constantFrom(true, false, undefined)), {
      minLength: 1,
      maxLength: 5,
    });
    const platform = fc.constantFrom("node", "native", "python");
    const field = fc.constantFrom(
      "function",
      "raw_function",
      "module",
      "package",
      "abs_path",
      "filename",
      "platform",
    );
    const check = (frames: Frame[], initial: (boolean | undefined)[], p: string) => {
      // A copy of the built-in rules is not the built-in array: decided afresh.
      const fresh = applyStacktraceRules(frames, initial, p, null, [...BUILT_IN_STACKTRACE_RULES]);
      for (let pass = 0; pass < 2; pass++) {
        expect(applyStacktraceRules(frames, initial, p, null, BUILT_IN_STACKTRACE_RULES)).toEqual(
          fresh,
        );
      }
    };
    fc.assert(
      fc.property(stack, platform, frame, field, fc.nat(), (pairs, p, other, name, at) => {
        const frames: Frame[] = pairs.map(([f]) => f);
        const initial = pairs.map(([, inApp]) => inApp);
        check(frames, initial, p);
        // The same stack with one field of one frame changed, right after it.
        const k = at % frames.length;
        const changed = frames.map((f, i) => (i === k ? { ...f, [name]: other[name] } : f));
        check(changed, initial, p);
      }),
      { numRuns: 5_000 },
    );
  });

  it("are frozen, so that no caller changes another's", () => {
    const frames = [{ function: "main", abs_path: "/app/src/main.js" }];
    const decision = applyStacktraceRules(
      frames,
      [undefined],
      "node",
      null,
      BUILT_IN_STACKTRACE_RULES,
    );
    expect(Object.isFrozen(decision.inApp) && Object.isFrozen(decision.groups)).toBe(true);
    expect(applyStacktraceRules(frames, [undefined], "node", null, BUILT_IN_STACKTRACE_RULES)).toBe(
      decision,
    );
  });
});
