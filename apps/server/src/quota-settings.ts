import { createQuota, listQuotas, type Orm, type QuotaRow } from "@sluice/db";
import { z } from "zod";

/**
 * The data categories a quota may name: Relay's `DataCategory` names
 * (relay-base-schema/src/data_category.rs) of what Sluice counts
 * (docs/protocol.md §3.4).
 */
export const QUOTA_CATEGORIES = [
  "default",
  "error",
  "security",
  "transaction",
  "attachment",
  "attachment_item",
  "session",
  "feedback",
  "monitor",
  "profile",
  "profile_chunk",
  "profile_chunk_ui",
  "replay",
  "span",
  "log_item",
  "trace_metric",
  "metric_bucket",
] as const;

/** Quotas one scope (an organization, or one project) may hold. */
const MAX_QUOTAS_PER_SCOPE = 50;
/** Longest quota window: 31 days, as Sentry's monthly quotas. */
export const MAX_WINDOW_SECONDS = 31 * 86_400;

/**
 * A new quota, in the shape of Relay's `Quota` (relay-quotas/src/quota.rs)
 * with the API's camelCase: `categories` (empty or absent: all), `limit`
 * (0 refuses everything), `window` (seconds), `reasonCode`. The scope is
 * not in it: organization-wide or one project, from the path. Used by
 * `POST …/quotas/` and the quota settings pages alike.
 */
export const quotaInput = z.object({
  categories: z.array(z.enum(QUOTA_CATEGORIES)).max(QUOTA_CATEGORIES.length).default([]),
  limit: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  window: z.number().int().min(1).max(MAX_WINDOW_SECONDS),
  reasonCode: z
    .string()
    .regex(/^[a-z0-9_]{1,64}$/, "reasonCode must be 1-64 of a-z, 0-9, _")
    .nullable()
    .optional(),
});

export type QuotaInput = z.infer<typeof quotaInput>;

/**
 * Stores a checked quota in its scope (`projectId` null: the whole
 * organization); the reason code defaults to `org_quota` or
 * `project_quota`. Returns the row, or a reason when the scope already
 * holds `MAX_QUOTAS_PER_SCOPE` quotas.
 */
export async function addQuota(
  orm: Orm,
  organizationId: number,
  projectId: number | null,
  input: QuotaInput,
): Promise<{ ok: true; row: QuotaRow } | { ok: false; detail: string }> {
  const existing = await listQuotas(orm, organizationId, projectId);
  if (existing.length >= MAX_QUOTAS_PER_SCOPE) {
    return { ok: false, detail: `at most ${MAX_QUOTAS_PER_SCOPE} quotas per scope` };
  }
  const row = await createQuota(orm, {
    organizationId,
    projectId,
    categories: [...new Set(input.categories)],
    windowSeconds: input.window,
    quotaLimit: input.limit,
    reasonCode: input.reasonCode ?? (projectId === null ? "org_quota" : "project_quota"),
  });
  return { ok: true, row };
}
