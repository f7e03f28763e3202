import { parseFingerprintRules } from "./fingerprint-rules.ts";
import type { ProjectGroupingRules } from "./hash-event.ts";
import { parseStacktraceRules, RULE_LIMITS } from "./stacktrace-rules.ts";

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

/** Sentry's wording of a parse error (fingerprinting's `Invalid syntax near "…" (line N, …)`), with our reason. */
function describeRuleError(text: string, error: { line: number; message: string }): string {
  if (error.line === 0) return `Invalid rules: ${error.message}`;
  const line = (text.split(/\r\n|\r|\n/)[error.line - 1] ?? "").trim();
  const context = line.length > 32 ? `${line.slice(0, 32)}...` : line;
  return `Invalid syntax near "${context}" (line ${error.line}): ${error.message}`;
}

/**
 * Checks one rule setting as Sentry's ProjectAdminSerializer does
 * (src/sentry/api/endpoints/project_details.py `validate_fingerprintingRules`,
 * `validate_groupingEnhancements`): a string of at most `RULE_LIMITS.maxChars`
 * characters that parses. Returns null when it may be stored, else the
 * first problem in Sentry's wording with its 1-based `line` (0: the whole
 * text), for the API's 400 and the settings page alike.
 */
export function checkGroupingRuleText(
  field: GroupingRuleError["field"],
  value: unknown,
): { line: number; message: string } | null {
  if (typeof value !== "string") return { line: 0, message: "Not a valid string." };
  if (value.length > RULE_LIMITS.maxChars) {
    return {
      line: 0,
      message: `Ensure this field has no more than ${RULE_LIMITS.maxChars} characters.`,
    };
  }
  const problem = parseGroupingRules({ [field]: value }).errors[0];
  return problem ? { line: problem.line, message: describeRuleError(value, problem) } : null;
}
