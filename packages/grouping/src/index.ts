export { frameValues, isInApp } from "./frame-values.ts";
export { type GroupHash, type GroupingVariant, hashEvent } from "./hash-event.ts";
export { describeIssue, type IssueMetadata } from "./issue-metadata.ts";
export { parameterizeMessage } from "./parameterize-message.ts";
