import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyStacktraceRules, parseStacktraceRules } from "./stacktrace-rules.ts";

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
