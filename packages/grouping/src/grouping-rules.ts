import { parseFingerprintRules } from "./fingerprint-rules.ts";
import type { ProjectGroupingRules } from "./hash-event.ts";
import { parseStacktraceRules } from "./stacktrace-rules.ts";

/** A problem in a project's rule text: which setting, 1-based line, what is wrong. */
export type GroupingRuleError = {
  field: "fingerprintingRules" | "groupingEnhancements";
  line: number;
  message: string;
};

/**
 * Parses a project's grouping settings as Sentry stores them
 * (`fingerprintingRules` and `groupingEnhancements` on
 * `PUT /api/0/projects/{org}/{project}/`): both are rule text, parsed by
 * `parseFingerprintRules` and `parseStacktraceRules`. Returns the rules
 * that parsed and every error with its field and line; callers that store
 * settings should refuse text with errors (a 400 listing them).
 */
export function parseGroupingRules(settings: {
  fingerprintingRules?: string | null;
  groupingEnhancements?: string | null;
}): { rules: ProjectGroupingRules; errors: GroupingRuleError[] } {
  const fingerprint = parseFingerprintRules(settings.fingerprintingRules ?? "");
  const stacktrace = parseStacktraceRules(settings.groupingEnhancements ?? "");
  return {
    rules: { fingerprinting: fingerprint.rules, stacktrace: stacktrace.rules },
    errors: [
      ...fingerprint.errors.map((e) => ({ field: "fingerprintingRules" as const, ...e })),
      ...stacktrace.errors.map((e) => ({ field: "groupingEnhancements" as const, ...e })),
    ],
  };
}
