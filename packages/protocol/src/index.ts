export { dataCategoryOf, itemTypeLabel } from "./data-category.ts";
export { formatDsn, type ParsedDsn, parseDsn } from "./dsn.ts";
export {
  type Envelope,
  EnvelopeFramingCheck,
  type EnvelopeHeaders,
  type EnvelopeItem,
  type ItemHeaders,
  MAX_ENVELOPE_ITEMS,
  MAX_HEADER_DEPTH,
  MAX_HEADER_LINE_BYTES,
  type ParseEnvelopeHeaderResult,
  type ParseEnvelopeResult,
  parseEnvelope,
  parseEnvelopeHeader,
} from "./envelope.ts";
export { type EventFields, scanEventFields } from "./event-fields.ts";
export { newEventId, normalizeEventId } from "./event-id.ts";
export {
  type BoundedJsonResult,
  type EventJsonResult,
  jsonDepthExceeds,
  parseBoundedJson,
  parseEventJson,
} from "./event-json.ts";
export {
  indexedEventTags,
  MAX_EVENT_TAGS,
  MAX_TAG_KEY_LENGTH,
  MAX_TAG_VALUE_LENGTH,
} from "./event-tags.ts";
export {
  type AuthSources,
  authFromPairs,
  extractIngestAuth,
  type IngestAuth,
  type IngestAuthResult,
  isPublicKey,
} from "./ingest-auth.ts";
export {
  formatTerm,
  type IncludeExclude as SearchIncludeExclude,
  type IssueSearch,
  MAX_QUERY_LENGTH as MAX_SEARCH_LENGTH,
  parseIssueSearch,
  type SearchStatus,
  type SearchTerm,
  type TagFilter,
  tokenizeSearch,
} from "./issue-search.ts";
export { defaultLimits, type Limits } from "./limits.ts";
export {
  type EventUser,
  type ExceptionValue,
  type Frame,
  type Level,
  type LogEntry,
  type Mechanism,
  type NormalizedEvent,
  normalizeEvent,
  type Stacktrace,
  type Thread,
} from "./normalize-event.ts";
export {
  isValidEnvironmentName,
  isValidReleaseVersion,
  MAX_ENVIRONMENT_LENGTH,
  MAX_RELEASE_LENGTH,
} from "./release-names.ts";
export { parseTimestamp, resolveEventTime, type TimestampError } from "./timestamp.ts";
