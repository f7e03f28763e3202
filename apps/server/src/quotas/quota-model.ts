import type { QuotaRow } from "@sluice/db";
import type { AppliedRateLimit, KeyRateLimit, QuotaScoping } from "../quota-gate.ts";

/**
 * Sentry's error categories (`DataCategory.error_categories()`): what a
 * key rate limit and spike protection count. Sluice counts `event` items
 * as `error` (docs/protocol.md §3.4).
 */
export const ERROR_CATEGORIES = ["default", "error", "security"];

/**
 * A quota as Relay applies it (relay-quotas/src/quota.rs `Quota`): counted
 * in `scope` (`scopeId`), for `categories` (empty: all), at most `limit`
 * per fixed window of `window` seconds, refused with `reasonCode`.
 * `historySeconds` keeps a counter past its window (spike protection reads
 * the trailing minutes).
 */
export type Quota = {
  id: string;
  scope: AppliedRateLimit["scope"];
  scopeId: number;
  categories: string[];
  limit: number;
  window: number;
  reasonCode: string | null;
  /** Fixed windows of an organization start at `organizationId % window` (Sentry quotas/redis.py), so they do not all roll over at once. */
  shift: number;
  historySeconds: number;
};

/** Relay's `REJECT_ALL_SECS` (relay-quotas/src/lib.rs): how long a limit of 0 is announced. */
const REJECT_ALL_SECONDS = 60;

/** Relay caps the retry time it announces (`processing.max_rate_limit`, 300 s by default). */
const MAX_RETRY_AFTER_SECONDS = 300;

/** The key rate limit as a quota (Sentry quotas/redis.py `get_quotas`: id `k`, scope key, `key_quota`). */
export function keyQuota(
  scoping: QuotaScoping,
  organizationId: number,
  limit: KeyRateLimit,
): Quota | null {
  if (limit.window <= 0) return null;
  return {
    id: "k",
    scope: "key",
    scopeId: scoping.keyId,
    categories: ERROR_CATEGORIES,
    limit: limit.count,
    window: limit.window,
    reasonCode: "key_quota",
    shift: organizationId % limit.window,
    historySeconds: 0,
  };
}

/** A stored project or organization quota (migration 0007) as a quota. */
export function storedQuota(row: QuotaRow): Quota {
  const scope = row.projectId === null ? "organization" : "project";
  return {
    id: `${scope === "project" ? "p" : "o"}${row.id}`,
    scope,
    scopeId: row.projectId ?? row.organizationId,
    categories: row.categories,
    limit: row.quotaLimit,
    window: row.windowSeconds,
    reasonCode: row.reasonCode || null,
    shift: row.organizationId % row.windowSeconds,
    historySeconds: 0,
  };
}

/** Whether `quota` counts `category` (Relay `Quota::matches`: no categories means all). */
export function quotaApplies(quota: Quota, category: string): boolean {
  return quota.categories.length === 0 || quota.categories.includes(category);
}

/** The window slot `now` (ms) falls in. */
export function windowSlot(quota: Quota, nowMs: number): number {
  return Math.floor((Math.floor(nowMs / 1000) + quota.shift) / quota.window);
}

/** End of the slot's window (epoch seconds). */
export function windowEnd(quota: Quota, slot: number): number {
  return (slot + 1) * quota.window - quota.shift;
}

/** The counter's name: `{prefix}:q:{id}:{scope}{scopeId}:{slot}`. */
export function counterKey(prefix: string, quota: Quota, slot: number): string {
  return `${prefix}:q:${quota.id}:${quota.scope[0]}${quota.scopeId}:${slot}`;
}

/** Seconds until the quota's current window ends, at least 1 and at most the cap. */
function retryAfterSeconds(quota: Quota, nowMs: number): number {
  if (quota.limit === 0) return REJECT_ALL_SECONDS;
  const left = Math.ceil(windowEnd(quota, windowSlot(quota, nowMs)) - nowMs / 1000);
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, left));
}

/** The `X-Sentry-Rate-Limits` entry of a quota that refused (Relay `RateLimit::from_quota`). */
export function appliedLimit(quota: Quota, nowMs: number): AppliedRateLimit {
  return {
    categories: quota.categories,
    scope: quota.scope,
    reasonCode: quota.reasonCode,
    retryAfterSeconds: retryAfterSeconds(quota, nowMs),
  };
}
