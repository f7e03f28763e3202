/**
 * What ingest asks of the quotas capability (apps/server/src/quotas/), as
 * types only: ingest may not import a capability's folder
 * (docs/architecture.md §2), so the composition root hands it a
 * `QuotaGate` built by `quotas/quotas-module.ts`.
 */

/** A DSN key's rate limit as Sentry's API shows it: `count` events per `window` seconds. */
export type KeyRateLimit = { count: number; window: number };

/** The scope a request is counted in (Relay `Scoping`). */
export type QuotaScoping = {
  projectId: number;
  keyId: number;
  keyRateLimit: KeyRateLimit | null;
};

/**
 * One limit that refused something, as `X-Sentry-Rate-Limits` names it
 * (Relay `RateLimit`): the categories (empty: all), the scope name, the
 * reason code and the seconds until it lifts.
 */
export type AppliedRateLimit = {
  categories: string[];
  scope: "key" | "project" | "organization" | "global";
  reasonCode: string | null;
  retryAfterSeconds: number;
};

/** The answer for one request: the categories refused (with the reason code each is counted under) and the limits to announce. */
export type QuotaDecision = {
  refused: Map<string, string>;
  limits: AppliedRateLimit[];
};

export type QuotaGate = {
  /**
   * Checks and, where accepted, consumes `quantities` (data category to
   * quantity, Relay's units: 1 per item, bytes for `attachment`). An
   * `error` refused also refuses `attachment`/`attachment_item`
   * (Relay's `EnvelopeLimiter`: items that require the event go with it).
   * Never rejects: when the counters cannot be reached it accepts (fails open).
   */
  check(scoping: QuotaScoping, quantities: Map<string, number>): Promise<QuotaDecision>;
  /** `X-Sentry-Rate-Limits` for `limits` (relay-server/src/utils/rate_limits.rs). */
  formatHeader(limits: AppliedRateLimit[]): string;
  close(): Promise<void>;
};
