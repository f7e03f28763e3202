/**
 * Maps an envelope item type to the data category its outcome is counted
 * under (Relay `ItemType` to `DataCategory`, relay-server/src/envelope/item.rs).
 * Unknown item types are counted under `unknown`, never rejected. A Map, not
 * an object: item types are client input, and `constructor` or `__proto__`
 * must not find `Object.prototype` members.
 */
export function dataCategoryOf(itemType: string): string {
  return CATEGORY_BY_ITEM_TYPE.get(itemType) ?? "unknown";
}

/**
 * The item type as a metric label: the type itself when Sluice knows it, else
 * `unknown`, so that clients cannot create Prometheus series at will.
 */
export function itemTypeLabel(itemType: string): string {
  return CATEGORY_BY_ITEM_TYPE.has(itemType) ? itemType : "unknown";
}

const CATEGORY_BY_ITEM_TYPE = new Map<string, string>([
  ["event", "error"],
  ["transaction", "transaction"],
  ["security", "security"],
  ["raw_security", "security"],
  ["nel", "security"],
  ["attachment", "attachment"],
  ["session", "session"],
  ["sessions", "session"],
  ["client_report", "internal"],
  ["user_report", "feedback"],
  ["feedback", "feedback"],
  ["check_in", "monitor"],
  ["profile", "profile"],
  ["profile_chunk", "profile_chunk"],
  ["profile_chunk_ui", "profile_chunk_ui"],
  ["replay_event", "replay"],
  ["replay_recording", "replay"],
  ["replay_video", "replay"],
  ["span", "span"],
  ["otel_span", "span"],
  ["otel_traces_data", "span"],
  ["log", "log_item"],
  ["trace_metric", "trace_metric"],
  ["statsd", "metric_bucket"],
  ["metric_buckets", "metric_bucket"],
]);
