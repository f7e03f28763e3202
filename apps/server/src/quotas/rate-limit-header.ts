import type { AppliedRateLimit } from "../quota-gate.ts";

/**
 * Formats `X-Sentry-Rate-Limits` as Relay does (`format_rate_limits`,
 * relay-server/src/utils/rate_limits.rs): per limit
 * `retry_after:categories:scope[:reason_code]`, categories joined by `;`
 * (empty: all), limits joined by `", "`. Example:
 * `60:error;default;security:key:key_quota, 30:attachment:organization`.
 */
export function formatRateLimits(limits: AppliedRateLimit[]): string {
  return limits
    .map((limit) => {
      const head = `${limit.retryAfterSeconds}:${limit.categories.join(";")}:${limit.scope}`;
      return limit.reasonCode ? `${head}:${limit.reasonCode}` : head;
    })
    .join(", ");
}
