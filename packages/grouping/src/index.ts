export {
  type FingerprintRule,
  matchFingerprintRules,
  parseFingerprintRules,
} from "./fingerprint-rules.ts";
export { frameValues, isInApp } from "./frame-values.ts";
export {
  CURRENT_GROUPING_CONFIG,
  computeEventGrouping,
  type EventGroupingHashes,
  GROUPING_CONFIGS,
  type GroupingConfigId,
  isGroupingConfig,
  PREVIOUS_GROUPING_CONFIG,
} from "./grouping-config.ts";
export {
  checkGroupingRuleText,
  type GroupingRuleError,
  parseGroupingRules,
} from "./grouping-rules.ts";
export {
  type EventGrouping,
  type GroupHash,
  type GroupingVariant,
  groupEvent,
  hashEvent,
  type ProjectGroupingRules,
} from "./hash-event.ts";
export { describeIssue, type IssueMetadata } from "./issue-metadata.ts";
export { parameterizeMessage } from "./parameterize-message.ts";
export {
  parseStacktraceRules,
  RULE_LIMITS,
  type RuleError,
  type StacktraceRule,
} from "./stacktrace-rules.ts";
