import type { Frame, NormalizedEvent } from "@sluice/protocol";
import { isInApp } from "./frame-values.ts";
import { compileGlob } from "./glob.ts";
import { platformFamily, RULE_LIMITS, type RuleError } from "./stacktrace-rules.ts";

/** One parsed fingerprint rule (Sentry's `fingerprintingRules` line). */
export type FingerprintRule = {
  text: string;
  matchers: FingerprintMatcher[];
  fingerprint: string[];
  attributes: { title?: string };
};

type Group = "exceptions" | "frames" | "family" | "messages" | "log" | "toplevel";
type FingerprintMatcher = {
  group: Group;
  negated: boolean;
  test: (values: Record<string, unknown>) => boolean;
};

const MATCHER_KEYS: Record<string, [string, Group]> = {
  type: ["type", "exceptions"],
  "error.type": ["type", "exceptions"],
  value: ["value", "exceptions"],
  "error.value": ["value", "exceptions"],
  message: ["message", "messages"],
  logger: ["logger", "log"],
  level: ["level", "log"],
  path: ["path", "frames"],
  "stack.abs_path": ["path", "frames"],
  function: ["function", "frames"],
  "stack.function": ["function", "frames"],
  module: ["module", "frames"],
  "stack.module": ["module", "frames"],
  package: ["package", "frames"],
  "stack.package": ["package", "frames"],
  family: ["family", "family"],
  app: ["app", "frames"],
  "stack.app": ["app", "frames"],
  sdk: ["sdk", "toplevel"],
  release: ["release", "toplevel"],
};

/**
 * Parses fingerprint rules in Sentry's syntax (src/sentry/grouping/
 * fingerprinting/): one rule a line, `matcher:value ... -> fingerprint`,
 * matchers `type`, `value`, `message`, `logger`, `level`, `path`,
 * `function`, `module`, `package`, `family`, `app`, `sdk`, `release`,
 * `tags.<key>` (and their `error.`/`stack.` spellings), `!` to negate,
 * values quoted or bare; the fingerprint is a list of values (bare, quoted,
 * `{{ variable }}`, commas optional) and `title="..."`; `#` comments.
 * Never throws: bad lines become errors with line numbers, as does text over
 * the bounds of `RULE_LIMITS`.
 */
export function parseFingerprintRules(text: string): {
  rules: FingerprintRule[];
  errors: RuleError[];
} {
  const rules: FingerprintRule[] = [];
  const errors: RuleError[] = [];
  if (text.length > RULE_LIMITS.maxChars) {
    return { rules, errors: [{ line: 0, message: `longer than ${RULE_LIMITS.maxChars} chars` }] };
  }
  for (const [index, raw] of text.split(/\r\n|\r|\n/).entries()) {
    const line = index + 1;
    if (raw.length > RULE_LIMITS.maxLineLength) {
      errors.push({ line, message: `longer than ${RULE_LIMITS.maxLineLength} chars` });
      continue;
    }
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    if (rules.length >= RULE_LIMITS.maxRules) {
      errors.push({ line, message: `more than ${RULE_LIMITS.maxRules} rules` });
      break;
    }
    const rule = parseRule(trimmed);
    if (typeof rule === "string") errors.push({ line, message: rule });
    else rules.push(rule);
  }
  return { rules, errors };
}

function parseRule(text: string): FingerprintRule | string {
  const matchers: FingerprintMatcher[] = [];
  let i = 0;
  const skipSpaces = () => {
    while (text[i] === " " || text[i] === "\t") i++;
  };
  for (;;) {
    skipSpaces();
    if (text.startsWith("->", i)) break;
    if (i >= text.length) return "expected `->` and a fingerprint";
    const negated = text[i] === "!";
    if (negated) i++;
    const keyMatch = /^(?:"([a-zA-Z0-9_.:-]+)"|([a-zA-Z0-9_.-]+)):/.exec(text.slice(i));
    if (!keyMatch) return `expected \`key:value\` at \`${text.slice(i, i + 20)}\``;
    const key = (keyMatch[1] ?? keyMatch[2]) as string;
    i += keyMatch[0].length;
    const value = readValue(text, i, /\s/);
    if (typeof value === "string") return value;
    i = value.end;
    const matcher = buildMatcher(key, value.text, negated);
    if (typeof matcher === "string") return matcher;
    matchers.push(matcher);
  }
  if (matchers.length === 0) return "a rule needs at least one matcher";
  i += 2;
  const fingerprint: string[] = [];
  const attributes: { title?: string } = {};
  for (;;) {
    skipSpaces();
    if (text[i] === ",") {
      i++;
      continue;
    }
    if (i >= text.length || text[i] === "#") break;
    const attribute = /^([a-zA-Z0-9_.-]+)="/.exec(text.slice(i));
    if (attribute) {
      const value = readValue(text, i + (attribute[1] as string).length + 1, /[\s,]/);
      if (typeof value === "string") return value;
      if (attribute[1] !== "title") return `unknown attribute \`${attribute[1]}\``;
      attributes.title = value.text;
      i = value.end;
      continue;
    }
    const variable = /^\{\{\s*\S+?\s*\}\}/.exec(text.slice(i));
    if (variable) {
      fingerprint.push(variable[0]);
      i += variable[0].length;
      continue;
    }
    if (text[i] === "{") return `bad fingerprint value at \`${text.slice(i, i + 20)}\``;
    const value = readValue(text, i, /[\s,{]/);
    if (typeof value === "string") return value;
    fingerprint.push(value.text);
    i = value.end;
  }
  if (fingerprint.length === 0) return "a rule needs a fingerprint";
  return { text, matchers, fingerprint, attributes };
}

/** A quoted (with `\"` and `\\` escapes) or bare value starting at `start`. */
function readValue(
  text: string,
  start: number,
  stop: RegExp,
): { text: string; end: number } | string {
  if (text[start] === '"') {
    let out = "";
    let i = start + 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\" && i + 1 < text.length) {
        out += text[i + 1];
        i += 2;
      } else {
        out += text[i];
        i++;
      }
    }
    if (i >= text.length) return "unterminated quote";
    return { text: out, end: i + 1 };
  }
  let i = start;
  while (i < text.length && !stop.test(text[i] as string)) i++;
  if (i === start) return `missing value at \`${text.slice(start, start + 20)}\``;
  return { text: text.slice(start, i), end: i };
}

function buildMatcher(key: string, pattern: string, negated: boolean): FingerprintMatcher | string {
  if (key.startsWith("tags.")) {
    const tag = key.slice(5);
    const match = compileGlob(pattern);
    return {
      group: "toplevel",
      negated,
      test: (v) => {
        const tags = v.tags as [string, string][];
        const found = tags.find(([k]) => k === tag);
        return found !== undefined && match(found[1]);
      },
    };
  }
  const known = MATCHER_KEYS[key];
  if (!known) return `unknown matcher \`${key}\``;
  const [name, group] = known;
  let test: (v: Record<string, unknown>) => boolean;
  switch (name) {
    case "path":
    case "package": {
      const glob = compileGlob(pattern, { paths: true, ignoreCase: true });
      const match = (s: string) => glob(s) || (!s.startsWith("/") && glob(`/${s}`));
      const fields = name === "path" ? ["abs_path", "filename"] : ["package"];
      test = (v) => fields.some((f) => typeof v[f] === "string" && match(v[f] as string));
      break;
    }
    case "family": {
      const families = new Set(pattern.split(","));
      test = (v) => families.has("all") || families.has(v.family as string);
      break;
    }
    case "app": {
      const wanted = ["1", "yes", "true", "on"].includes(pattern.toLowerCase())
        ? true
        : ["0", "no", "false", "off"].includes(pattern.toLowerCase())
          ? false
          : null;
      if (wanted === null) return `invalid value for app: \`${pattern}\``;
      test = (v) => v.app === wanted;
      break;
    }
    default: {
      const ignoreCase = ["value", "message", "logger", "level"].includes(name);
      const glob = compileGlob(pattern, { ignoreCase });
      test = (v) => typeof v[name] === "string" && glob(v[name] as string);
    }
  }
  return { group, negated, test };
}

/**
 * The first fingerprint rule that matches the event, as Sentry's
 * `FingerprintingRules.get_fingerprint_values_for_event` decides: every
 * matcher must hold, and matchers on frames (or on exceptions) must all
 * hold for one and the same frame (exception) of any stack trace; `family`
 * is the event platform's.
 */
export function matchFingerprintRules(
  event: NormalizedEvent,
  rules: FingerprintRule[],
): FingerprintRule | null {
  if (rules.length === 0) return null;
  const access = eventValues(event);
  for (const rule of rules) {
    const groups = new Map<Group, FingerprintMatcher[]>();
    for (const m of rule.matchers) groups.set(m.group, [...(groups.get(m.group) ?? []), m]);
    const matches = [...groups].every(([group, matchers]) =>
      access[group].some((values) => matchers.every((m) => m.test(values) !== m.negated)),
    );
    if (matches) return rule;
  }
  return null;
}

function eventValues(event: NormalizedEvent): Record<Group, Record<string, unknown>[]> {
  const stacks: Frame[][] = [
    ...event.exceptions.map((e) => e.stacktrace?.frames ?? []),
    ...event.threads.map((t) => t.stacktrace?.frames ?? []),
    event.stacktrace?.frames ?? [],
  ];
  const frames = stacks.flat().map((f) => ({
    abs_path: f.abs_path,
    filename: f.filename,
    function: f.function ?? f.raw_function,
    module: f.module,
    package: f.package,
    app: isInApp(f),
  }));
  const message = event.logentry?.formatted ?? event.logentry?.message;
  const messages = [
    ...(message ? [{ message }] : []),
    ...event.exceptions.flatMap((e) => (e.value ? [{ message: e.value }] : [])),
  ];
  const sdkName = event.sdk && typeof event.sdk.name === "string" ? event.sdk.name : undefined;
  return {
    exceptions: event.exceptions.map((e) => ({ type: e.type, value: e.value })),
    frames,
    family: [{ family: platformFamily(event.platform) }],
    messages,
    log: [{ logger: event.logger ?? undefined, level: event.level }],
    toplevel: [{ tags: event.tags, sdk: sdkName, release: event.release ?? undefined }],
  };
}

/**
 * Sentry's built-in fingerprint rules (src/sentry/grouping/fingerprinting/
 * configs/sentry.javascript@2024-02-02): every JavaScript ChunkLoadError is
 * one issue. They apply after a project's rules, and not to events whose
 * SDK sent its own fingerprint.
 */
export const BUILT_IN_FINGERPRINT_RULES: FingerprintRule[] = parseFingerprintRules(
  [
    "family:javascript type:ChunkLoadError -> chunkloaderror",
    "family:javascript value:ChunkLoadError* -> chunkloaderror",
  ].join("\n"),
).rules;
