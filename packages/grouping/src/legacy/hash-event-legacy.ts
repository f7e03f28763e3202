import { createHash } from "node:crypto";
import type { ExceptionValue, Frame, NormalizedEvent } from "@sluice/protocol";
import type { GroupHash, GroupingVariant } from "../grouping-types.ts";
import { frameValues, isInApp, sameCall } from "./frame-values-legacy.ts";
import { parameterizeMessage } from "./parameterize-message-legacy.ts";

/**
 * The `legacy` grouping config: Sluice's grouping before `sluice:2026-12`,
 * frozen so that events keep matching the issues it created (secondary
 * hashes during a config transition). Do not change what it returns.
 *
 * With `forMatching`, hashes the old code produced through its two
 * over-merging paths are left out, so that a transition does not keep
 * feeding the issues those fixes split: a custom fingerprint of no parts
 * (md5 of nothing, one issue per project) and the `app` variant's fallback
 * to type + value when no frame is in-app.
 *
 * Computes the group hashes of an event, best first, following Sentry's
 * default grouping (src/sentry/grouping/api.py and strategies/newstyle.py):
 * a legacy `checksum` wins outright; otherwise the first strategy that contributes (chained exceptions, then the crashed
 * thread, then a bare stack trace, then the parameterized message) yields an
 * `app` variant (in-app frames only) and a `system` variant (all frames);
 * a `fingerprint` replaces them (custom) or is salted with them where it says
 * `{{ default }}` (hybrid). Each hash is the md5 of the contributing values
 * concatenated without a separator. The event joins the first existing issue
 * that owns any of the returned hashes.
 */
export function hashEventLegacy(event: NormalizedEvent, forMatching = false): GroupHash[] {
  if (event.checksum) {
    const hash = /^[0-9a-f]{32}$/i.test(event.checksum)
      ? event.checksum.toLowerCase()
      : md5([event.checksum]);
    return [{ variant: "checksum", hash }];
  }
  const variants = defaultVariants(event, forMatching);
  const fingerprint = event.fingerprint ?? ["{{ default }}"];
  const isDefault = (entry: string) => /^\{\{\s*default\s*\}\}$/.test(entry);

  if (forMatching && fingerprint.length === 0) return [];
  if (!fingerprint.some(isDefault)) {
    return [{ variant: "custom", hash: md5(fingerprint.map((e) => resolveVariable(e, event))) }];
  }
  const hashes: GroupHash[] = [];
  for (const [variant, values] of variants) {
    const salted = fingerprint.flatMap((e) =>
      isDefault(e) ? values : [resolveVariable(e, event)],
    );
    const hash = md5(salted);
    if (!hashes.some((h) => h.hash === hash)) hashes.push({ variant, hash });
  }
  if (hashes.length === 0) {
    const rest = fingerprint.filter((e) => !isDefault(e)).map((e) => resolveVariable(e, event));
    hashes.push({ variant: "fallback", hash: md5(rest) });
  }
  return hashes;
}

function md5(values: string[]): string {
  return createHash("md5").update(values.join("")).digest("hex");
}

type Variants = [GroupingVariant, string[]][];

function defaultVariants(event: NormalizedEvent, forMatching: boolean): Variants {
  const strategies: (() => Variants)[] = [
    () => exceptionVariants(event, forMatching),
    () => threadVariants(event),
    () => stackVariants(event.stacktrace?.frames ?? [], event.platform),
    () => messageVariants(event),
  ];
  for (const strategy of strategies) {
    const variants = strategy();
    if (variants.length > 0) return variants;
  }
  return [];
}

function exceptionVariants(event: NormalizedEvent, forMatching: boolean): Variants {
  const exceptions = groupedExceptions(event.exceptions);
  if (exceptions.length === 0) return [];
  const out: Variants = [];
  for (const variant of ["app", "system"] as const) {
    const values = exceptions.flatMap((e) => exceptionValues(e, variant === "app", event.platform));
    const noInAppFrame = !exceptions.some((e) => e.stacktrace?.frames.some(isInApp));
    const anyFrame = exceptions.some((e) => (e.stacktrace?.frames.length ?? 0) > 0);
    if (forMatching && variant === "app" && noInAppFrame && anyFrame) continue;
    if (values.length > 0) out.push([variant, values]);
  }
  return out;
}

function exceptionValues(exception: ExceptionValue, appOnly: boolean, platform: string): string[] {
  const stack = stackValues(exception.stacktrace?.frames ?? [], appOnly, platform);
  const type = exception.mechanism?.synthetic ? undefined : exception.type;
  const out = [...stack];
  if (type) out.push(type);
  if (stack.length === 0 && exception.value) out.push(parameterizeMessage(exception.value));
  return out;
}

/**
 * Exception groups (RFC 79): hash the distinct leaf exceptions, not the
 * group containers, so that the same failures in another order group alike.
 */
function groupedExceptions(exceptions: ExceptionValue[]): ExceptionValue[] {
  if (!exceptions.some((e) => e.mechanism?.is_exception_group)) return exceptions;
  const leaves = exceptions.filter((e) => !e.mechanism?.is_exception_group);
  const seen = new Set<string>();
  return leaves.filter((e) => {
    const key = JSON.stringify([e.type, e.value, e.stacktrace?.frames?.length]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function threadVariants(event: NormalizedEvent): Variants {
  const { threads } = event;
  const pick =
    oneOf(threads.filter((t) => t.crashed)) ??
    oneOf(threads.filter((t) => t.current)) ??
    oneOf(threads);
  return pick ? stackVariants(pick.stacktrace?.frames ?? [], event.platform) : [];
}

function oneOf<T>(list: T[]): T | undefined {
  return list.length === 1 ? list[0] : undefined;
}

function stackVariants(frames: Frame[], platform: string): Variants {
  const out: Variants = [];
  for (const variant of ["app", "system"] as const) {
    const values = stackValues(frames, variant === "app", platform);
    if (values.length > 0) out.push([variant, values]);
  }
  return out;
}

function stackValues(frames: Frame[], appOnly: boolean, platform: string): string[] {
  const values: string[] = [];
  let previous: Frame | undefined;
  for (const frame of frames) {
    const repeated = previous !== undefined && sameCall(previous, frame);
    previous = frame;
    if (repeated || (appOnly && !isInApp(frame))) continue;
    const frameParts = frameValues(frame, platform);
    if (frameParts) values.push(...frameParts);
  }
  return values;
}

function messageVariants(event: NormalizedEvent): Variants {
  const message = event.logentry?.message ?? event.logentry?.formatted;
  return message ? [["default", [parameterizeMessage(message)]]] : [];
}

/** Fingerprint variables (src/sentry/grouping/fingerprinting/utils.py; docs/protocol.md §7.6). */
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
