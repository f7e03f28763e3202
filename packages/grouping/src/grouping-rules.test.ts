import { normalizeEvent } from "@sluice/protocol";
import { describe, expect, it } from "vitest";
import { checkGroupingRuleText, parseGroupingRules } from "./grouping-rules.ts";
import { groupEvent, hashEvent } from "./hash-event.ts";
import { RULE_LIMITS } from "./stacktrace-rules.ts";

const meta = { eventId: "a".repeat(32), timestamp: new Date(0), receivedAt: new Date(0) };
const event = (raw: Record<string, unknown>) => normalizeEvent(raw, meta);
const rulesOf = (fingerprintingRules: string, groupingEnhancements = "") => {
  const parsed = parseGroupingRules({ fingerprintingRules, groupingEnhancements });
  expect(parsed.errors).toEqual([]);
  return parsed.rules;
};
const frame = (fn: string, path: string, inApp?: boolean) => ({
  function: fn,
  abs_path: path,
  filename: path,
  ...(inApp === undefined ? {} : { in_app: inApp }),
});
const pyError = (type: string, value: string, frames: object[], extra = {}) => ({
  platform: "python",
  exception: { values: [{ type, value, stacktrace: { frames } }] },
  ...extra,
});

describe("fingerprint rules", () => {
  const db = pyError("OperationalError", "connection refused", [
    frame("connect", "/app/db.py", true),
  ]);
  const other = pyError("OperationalError", "timeout", [frame("query", "/app/q.py", true)]);

  it("give matching events the rule's fingerprint and title", () => {
    const rules = rulesOf(
      '# database outages\nerror.type:OperationalError -> database-down title="Database is down"',
    );
    const a = groupEvent(event(db), rules);
    expect(a.hashes).toEqual(hashEvent(event(other), rules));
    expect(a.hashes).toHaveLength(1);
    expect(a.title).toBe("Database is down");
    expect(hashEvent(event(pyError("KeyError", "x", [])), rules)).not.toEqual(a.hashes);
  });

  it("match frames, messages, tags and negations, and salt {{ default }} with variables", () => {
    const rules = rulesOf(
      [
        'stack.function:connect stack.abs_path:"**/db.py" -> db, {{ default }}',
        "!tags.region:eu* message:*timeout* -> slow {{ tags.region }}",
      ].join("\n"),
    );
    const hybrid = hashEvent(event(db), rules);
    expect(hybrid).not.toEqual(hashEvent(event(db)));
    expect(hybrid.length).toBe(hashEvent(event(db)).length);
    const us = hashEvent(event({ ...other, tags: { region: "us-1" } }), rules);
    expect(us).toEqual(hashEvent(event({ ...other, fingerprint: ["slow", "us-1"] })));
    expect(hashEvent(event({ ...other, tags: { region: "eu-1" } }), rules)).toEqual(
      hashEvent(event(other)),
    );
  });

  it("take precedence over the SDK's fingerprint", () => {
    const rules = rulesOf("type:OperationalError -> ours");
    expect(hashEvent(event({ ...db, fingerprint: ["theirs"] }), rules)).toEqual(
      hashEvent(event({ ...db, fingerprint: ["ours"] })),
    );
  });
});

describe("stack trace rules", () => {
  const lib = (fn: string) => frame(fn, "/srv/lib/vendored/x.py");
  const mine = frame("handler", "/srv/app/views.py");

  it("+app makes frames in-app, -group drops frames from every variant", () => {
    const a = event(pyError("E", "x", [lib("one"), mine]));
    const b = event(pyError("E", "x", [lib("two"), mine]));
    expect(hashEvent(a)).toEqual([{ variant: "system", hash: expect.any(String) }]);
    const app = rulesOf("", "path:/srv/app/** +app");
    expect(hashEvent(a, app)[0]).toEqual(hashEvent(b, app)[0]);
    expect(hashEvent(a, app)[0]?.variant).toBe("app");
    const ungrouped = rulesOf("", "stack.function:one -group\nstack.function:two -group");
    expect(hashEvent(a, ungrouped)).toEqual(hashEvent(b, ungrouped));
  });

  it("v-group and ^-group drop the frames below or above a match, category= feeds later rules", () => {
    const frames = [lib("outer"), frame("entry", "/srv/app/entry.py"), mine];
    const below = rulesOf("", "stack.function:entry v-group");
    expect(hashEvent(event(pyError("E", "x", frames)), below)).toEqual(
      hashEvent(event(pyError("E", "x", [lib("other"), ...frames.slice(1)])), below),
    );
    const above = rulesOf("", "function:entry category=boundary\ncategory:boundary ^-group");
    expect(hashEvent(event(pyError("E", "x", frames)), above)).toEqual(
      hashEvent(event(pyError("E", "x", [...frames.slice(0, 2), lib("x")])), above),
    );
  });

  it("max-frames keeps the frames nearest the crash", () => {
    const rules = rulesOf("", "family:other max-frames=1");
    expect(hashEvent(event(pyError("E", "x", [lib("a"), mine])), rules)).toEqual(
      hashEvent(event(pyError("E", "x", [lib("b"), mine])), rules),
    );
  });
});

describe("parseGroupingRules", () => {
  it("reports each bad line with its field and number, and keeps the good ones", () => {
    const parsed = parseGroupingRules({
      fingerprintingRules:
        'type:A -> a\nnope -> x\ntype:"unterminated -> x\nfoo:bar -> x\ntype:B ->',
      groupingEnhancements:
        "function:a -app\n\nfunction:b\nwhat:x +app\nfunction:c +frobnicate\nfunction:d min-frames=2",
    });
    expect(parsed.rules.fingerprinting).toHaveLength(1);
    expect(parsed.rules.stacktrace).toHaveLength(1);
    expect(parsed.errors.map((e) => [e.field, e.line])).toEqual([
      ["fingerprintingRules", 2],
      ["fingerprintingRules", 3],
      ["fingerprintingRules", 4],
      ["fingerprintingRules", 5],
      ["groupingEnhancements", 3],
      ["groupingEnhancements", 4],
      ["groupingEnhancements", 5],
      ["groupingEnhancements", 6],
    ]);
    for (const e of parsed.errors) expect(e.message).not.toBe("");
  });

  it("bounds the text, its lines and the number of rules", () => {
    const long = parseGroupingRules({
      groupingEnhancements: `function:${"a".repeat(RULE_LIMITS.maxLineLength)} -app`,
    });
    expect(long.errors).toEqual([
      { field: "groupingEnhancements", line: 1, message: expect.stringMatching(/longer/) },
    ]);
    const many = Array.from({ length: RULE_LIMITS.maxRules + 5 }, (_, i) => `type:T${i} -> t`).join(
      "\n",
    );
    const parsed = parseGroupingRules({ fingerprintingRules: many });
    expect(parsed.rules.fingerprinting).toHaveLength(RULE_LIMITS.maxRules);
    expect(parsed.errors).toHaveLength(1);
    const huge = parseGroupingRules({ fingerprintingRules: "#".repeat(RULE_LIMITS.maxChars + 1) });
    expect(huge.errors[0]?.line).toBe(0);
  });
});

describe("checkGroupingRuleText", () => {
  it("accepts rules that parse and the empty text", () => {
    expect(checkGroupingRuleText("fingerprintingRules", "type:A -> a")).toBeNull();
    expect(checkGroupingRuleText("groupingEnhancements", "stack.module:foo -app")).toBeNull();
    expect(checkGroupingRuleText("fingerprintingRules", "")).toBeNull();
  });

  it("names the first bad line in Sentry's wording, and refuses oversize text and non-strings", () => {
    const long = `type:A -> a\n${"x".repeat(40)} nonsense`;
    expect(checkGroupingRuleText("fingerprintingRules", long)).toEqual({
      line: 2,
      message: expect.stringMatching(/^Invalid syntax near "x{32}\.\.\." \(line 2\): /),
    });
    expect(checkGroupingRuleText("groupingEnhancements", "stack.module:foo +nonsense")?.line).toBe(
      1,
    );
    expect(
      checkGroupingRuleText("fingerprintingRules", "a".repeat(RULE_LIMITS.maxChars + 1)),
    ).toEqual({ line: 0, message: expect.stringContaining("no more than 65536 characters") });
    expect(checkGroupingRuleText("fingerprintingRules", 12)).toEqual({
      line: 0,
      message: "Not a valid string.",
    });
  });
});
