import { createHash } from "node:crypto";
import type { ExceptionValue, Frame, NormalizedEvent } from "@sluice/protocol";
import { filterExceptionGroups } from "./exception-groups.ts";
import {
  BUILT_IN_FINGERPRINT_RULES,
  type FingerprintRule,
  matchFingerprintRules,
} from "./fingerprint-rules.ts";
import { frameValues, sameCall } from "./frame-values.ts";
import type { GroupHash, GroupingVariant } from "./grouping-types.ts";
import { parameterizeMessage } from "./parameterize-message.ts";
import { securityReportValues } from "./security-report.ts";
import {
  applyStacktraceRules,
  BUILT_IN_STACKTRACE_RULES,
  platformFamily,
  type RuleException,
  type StacktraceRule,
} from "./stacktrace-rules.ts";

export type { GroupHash, GroupingVariant } from "./grouping-types.ts";

/** A project's own grouping rules, parsed (see `parseGroupingRules`). */
export type ProjectGroupingRules = {
  fingerprinting?: FingerprintRule[];
  stacktrace?: StacktraceRule[];
};

/** An event's grouping: its hashes, best first, and a title a fingerprint rule set. */
export type EventGrouping = { hashes: GroupHash[]; title: string | null };

/**
 * Computes the group hashes of an event under the current grouping config
 * (`sluice:2026-12`), best first, as Sentry's `newstyle@2023-01-11` config
 * does (src/sentry/grouping/api.py, strategies/newstyle.py): a `checksum`
 * wins outright; otherwise the first strategy that contributes, in Sentry's
 * order (chained exceptions, the one crashed/current thread, a bare stack
 * trace, a security report, the parameterized message), gives an `app`
 * variant (in-app frames only) and a `system` variant (all frames); a
 * variant without a contributing stack trace drops out when another has one.
 * Stack trace rules (built in, then the project's) decide in-app and which
 * frames group. The fingerprint (a project's fingerprint rule, else the
 * SDK's, else a built-in rule's, else `{{ default }}`; an empty one counts as
 * default) replaces the
 * variants or is salted with them where it says `{{ default }}`. Each hash
 * is the md5 of the contributing values concatenated; nothing contributing
 * gives the `fallback` md5 of nothing. `rules` are the project's own rules.
 */
export function hashEvent(event: NormalizedEvent, rules: ProjectGroupingRules = {}): GroupHash[] {
  return groupEvent(event, rules).hashes;
}

/** {@link hashEvent}, with the issue title a matching fingerprint rule sets (`title=`). */
export function groupEvent(
  event: NormalizedEvent,
  rules: ProjectGroupingRules = {},
): EventGrouping {
  if (event.checksum) {
    const hash = /^[0-9a-f]{32}$/i.test(event.checksum)
      ? event.checksum.toLowerCase()
      : md5([event.checksum]);
    return { hashes: [{ variant: "checksum", hash }], title: null };
  }
  const isDefault = (entry: string) => /^\{\{\s*default\s*\}\}$/.test(entry);
  const client = event.fingerprint && event.fingerprint.length > 0 ? event.fingerprint : null;
  const matched =
    matchFingerprintRules(event, rules.fingerprinting ?? []) ??
    (client === null || client.every(isDefault)
      ? matchFingerprintRules(event, BUILT_IN_FINGERPRINT_RULES)
      : null);
  const fingerprint = matched?.fingerprint ?? client ?? ["{{ default }}"];
  const title = matched?.attributes.title ?? null;

  if (!fingerprint.some(isDefault)) {
    const values = fingerprint.map((e) => resolveVariable(e, event));
    return { hashes: [{ variant: "custom", hash: md5(values) }], title };
  }
  // The built-in array itself when the project adds none: its decisions are remembered.
  const stackRules =
    rules.stacktrace && rules.stacktrace.length > 0
      ? [...BUILT_IN_STACKTRACE_RULES, ...rules.stacktrace]
      : BUILT_IN_STACKTRACE_RULES;
  const hashes: GroupHash[] = [];
  for (const [variant, values] of contributingVariants(event, stackRules)) {
    const salted = fingerprint.flatMap((e) =>
      isDefault(e) ? values : [resolveVariable(e, event)],
    );
    const hash = md5(salted);
    if (!hashes.some((h) => h.hash === hash)) hashes.push({ variant, hash });
  }
  if (hashes.length === 0) hashes.push({ variant: "fallback", hash: md5([]) });
  return { hashes, title };
}

function md5(values: string[]): string {
  const hash = createHash("md5");
  for (const value of values) hash.update(value);
  return hash.digest("hex");
}

/** A variant's values and whether a stack trace contributes to it. */
type Variant = { values: string[]; stacktrace: boolean };
type Variants = Map<"app" | "system" | "default", Variant>;

/** The variants of the first strategy that contributes, in Sentry's strategy order. */
function contributingVariants(
  event: NormalizedEvent,
  rules: StacktraceRule[],
): [GroupingVariant, string[]][] {
  const strategies: (() => Variants)[] = [
    () => exceptionVariants(event, rules),
    () => threadVariants(event, rules),
    () =>
      event.stacktrace ? stackVariants(event.stacktrace.frames, event, null, rules) : new Map(),
    () => {
      const values = securityReportValues(event.raw);
      return new Map(values ? [["default", { values, stacktrace: false }]] : []);
    },
    () => messageVariants(event),
  ];
  for (const strategy of strategies) {
    const variants = dropNonStacktraceVariants(strategy());
    if (variants.size > 0) return [...variants].map(([name, v]) => [name, v.values]);
  }
  return [];
}

/**
 * Sentry's `remove_non_stacktrace_variants`: when a stack trace contributes
 * to some variant, variants without one do not contribute. Also drops
 * variants with no values.
 */
function dropNonStacktraceVariants(variants: Variants): Variants {
  const anyStack = [...variants.values()].some((v) => v.stacktrace);
  const out: Variants = new Map();
  for (const [name, v] of variants) {
    if (v.values.length > 0 && (v.stacktrace || !anyStack)) out.set(name, v);
  }
  return out;
}

function exceptionVariants(event: NormalizedEvent, rules: StacktraceRule[]): Variants {
  if (event.exceptions.length === 0) return new Map();
  const byException = new Map<ExceptionValue, Variants>();
  for (const exception of event.exceptions) {
    byException.set(exception, singleExceptionVariants(exception, event, rules));
  }
  const keyOf = (e: ExceptionValue) =>
    JSON.stringify([...(byException.get(e) ?? [])].map(([n, v]) => [n, v.values]));
  const exceptions = filterExceptionGroups(event.exceptions, keyOf);
  const out: Variants = new Map();
  for (const exception of exceptions) {
    for (const [name, v] of byException.get(exception) ?? (new Map() as Variants)) {
      const acc = out.get(name) ?? { values: [], stacktrace: false };
      acc.values.push(...v.values);
      acc.stacktrace ||= v.stacktrace;
      out.set(name, acc);
    }
  }
  return out;
}

/**
 * Sentry's `single_exception`: stack trace values, then the type (unless
 * the exception is synthetic), then NSError domain and code, then the
 * parameterized value when neither stack trace nor NSError contributes. An
 * exception without a stack trace has only the `app` variant.
 */
function singleExceptionVariants(
  exception: ExceptionValue,
  event: NormalizedEvent,
  rules: StacktraceRule[],
): Variants {
  const ruleException: RuleException = {
    type: exception.type,
    value: exception.value,
    mechanism: exception.mechanism?.type,
  };
  const stacks: Variants = exception.stacktrace
    ? stackVariants(exception.stacktrace.frames, event, ruleException, rules, true)
    : new Map([["app", { values: [], stacktrace: false }]]);
  const type = exception.type && !exception.mechanism?.synthetic ? [exception.type] : [];
  const nsError = nsErrorValues(exception);
  const out: Variants = new Map();
  for (const [name, stack] of stacks) {
    const values = [...stack.values, ...type, ...nsError];
    if (!stack.stacktrace && nsError.length === 0 && exception.value) {
      const value = parameterizeMessage(exception.value);
      if (value !== "") values.push(value);
    }
    out.set(name, { values, stacktrace: stack.stacktrace });
  }
  return out;
}

function nsErrorValues(exception: ExceptionValue): string[] {
  const meta = exception.mechanism?.meta as { ns_error?: Record<string, unknown> } | undefined;
  const nsError = meta?.ns_error;
  if (!nsError || typeof nsError !== "object") return [];
  return [nsError.domain, nsError.code]
    .filter((v) => typeof v === "string" || typeof v === "number")
    .map(String);
}

function threadVariants(event: NormalizedEvent, rules: StacktraceRule[]): Variants {
  const { threads } = event;
  const pick =
    oneOf(threads.filter((t) => t.crashed)) ??
    oneOf(threads.filter((t) => t.current)) ??
    oneOf(threads);
  return pick?.stacktrace ? stackVariants(pick.stacktrace.frames, event, null, rules) : new Map();
}

function oneOf<T>(list: T[]): T | undefined {
  return list.length === 1 ? list[0] : undefined;
}

/**
 * The `app` and `system` values of one stack trace (Sentry's
 * `_single_stacktrace_variant`): a frame contributes unless it repeats the
 * frame before it (recursion), a rule says it does not group, or (for
 * `app`) it is not in-app; a lone JavaScript frame with a URL and no
 * function does not contribute; `max-frames` keeps the frames nearest the
 * crash. `keepEmpty` keeps variants whose stack trace does not contribute
 * (an exception still groups by its type and value there).
 */
function stackVariants(
  frames: Frame[],
  event: NormalizedEvent,
  exception: RuleException | null,
  rules: StacktraceRule[],
  keepEmpty = false,
): Variants {
  const initial = frames.map(initialInApp);
  const decision = applyStacktraceRules(frames, initial, event.platform, exception, rules);
  const base = frames.map((frame, i) => {
    const previous = frames[i - 1];
    if (previous !== undefined && sameCall(previous, frame)) return null;
    if (!decision.groups[i]) return null;
    return frameValues(frame, event.platform);
  });
  const only = frames[0];
  if (
    frames.length === 1 &&
    only !== undefined &&
    platformFamily(only.platform ?? event.platform) === "javascript" &&
    !only.function &&
    /^(file|https?|applewebdata|blob):/.test(only.abs_path ?? "")
  ) {
    base[0] = null;
  }
  const out: Variants = new Map();
  for (const name of ["system", "app"] as const) {
    let contributing = base.map((v, i) => (name === "app" && !decision.inApp[i] ? null : v));
    if (decision.maxFrames !== null) {
      let left = decision.maxFrames;
      contributing = contributing
        .reverse()
        .map((v) => (v !== null && left-- > 0 ? v : null))
        .reverse();
    }
    const values = contributing.flatMap((v) => v ?? []);
    if (values.length > 0 || keepEmpty) {
      out.set(name, { values, stacktrace: values.length > 0 });
    }
  }
  return new Map([...out].sort(([a], [b]) => (a === "app" ? -1 : b === "app" ? 1 : 0)));
}

/**
 * In-app before rules: the SDK's flag, else what Sentry's JavaScript
 * processing decides for webpack and `app:` sources (in-app unless under
 * `~/` or `node_modules`), else unknown.
 */
function initialInApp(frame: Frame): boolean | undefined {
  if (typeof frame.in_app === "boolean") return frame.in_app;
  const path = frame.abs_path ?? "";
  if (/^(webpack|app):/.test(path)) {
    const filename = frame.filename ?? path;
    return !/node_modules\//.test(filename) && !/^(webpack|app):\/\/\/?~\//.test(path);
  }
  return undefined;
}

function messageVariants(event: NormalizedEvent): Variants {
  const message = event.logentry?.message ?? event.logentry?.formatted;
  if (!message) return new Map();
  return new Map([["default", { values: [parameterizeMessage(message)], stacktrace: false }]]);
}

/** Fingerprint variables (src/sentry/grouping/fingerprinting/utils.py). */
function resolveVariable(entry: string, event: NormalizedEvent): string {
  const match = /^\{\{\s*([\w.]+)\s*\}\}$/.exec(entry);
  if (!match) return entry;
  const name = (match[1] as string).toLowerCase();
  const last = event.exceptions.at(-1);
  const crashFrame = last?.stacktrace?.frames.at(-1);
  switch (name) {
    case "transaction":
      return event.transaction ?? "<no-transaction>";
    case "message":
      return event.logentry?.formatted ?? event.logentry?.message ?? last?.value ?? "<no-message>";
    case "type":
    case "error.type":
      return last?.type ?? "<no-type>";
    case "value":
    case "error.value":
      return last?.value ?? "<no-value>";
    case "function":
    case "stack.function":
      return crashFrame?.function ?? "<no-function>";
    case "filename":
    case "stack.filename":
      return crashFrame?.filename ?? "<no-filename>";
    case "module":
    case "stack.module":
      return crashFrame?.module ?? "<no-module>";
    case "package":
    case "stack.package":
      return crashFrame?.package?.split(/[/\\]/).pop() ?? "<no-package>";
    case "level":
      return event.level;
    case "logger":
      return event.logger ?? "<no-logger>";
    default:
      if (name.startsWith("tags.")) {
        const tag = name.slice(5);
        return (
          event.tags.find(([k]) => k.toLowerCase() === tag)?.[1] ?? `<no-value-for-tag-${tag}>`
        );
      }
      return entry;
  }
}
