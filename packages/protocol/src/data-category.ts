/**
 * Maps an envelope item type to the data category its outcome is counted
 * under (Relay `ItemType` to `DataCategory`, SENTRY_PROTOCOL.md §3.4 and §5.1).
 * Unknown item types are counted under `unknown`, never rejected.
 */
export function dataCategoryOf(itemType: string): string {
  return CATEGORY_BY_ITEM_TYPE[itemType] ?? "unknown";
}

const CATEGORY_BY_ITEM_TYPE: Record<string, string> = {
  event: "error",
  transaction: "transaction",
  security: "security",
  raw_security: "security",
  nel: "security",
  attachment: "attachment",
  session: "session",
  sessions: "session",
  client_report: "internal",
  user_report: "feedback",
  feedback: "feedback",
  check_in: "monitor",
  profile: "profile",
  profile_chunk: "profile_chunk",
  profile_chunk_ui: "profile_chunk_ui",
  replay_event: "replay",
  replay_recording: "replay",
  replay_video: "replay",
  span: "span",
  otel_span: "span",
  otel_traces_data: "span",
  log: "log_item",
  trace_metric: "trace_metric",
  statsd: "metric_bucket",
  metric_buckets: "metric_bucket",
};
