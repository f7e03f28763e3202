import { z } from "zod";

/**
 * The body field of `PUT /api/0/projects/{org}/{project}/` that sets a
 * project's event retention (a Sluice extension; Sentry sets retention per
 * plan, not per project): whole days from 1 to the instance's
 * `SLUICE_RETENTION_DAYS`, or null for the instance's. A project cannot keep
 * events longer than the instance, because the instance drops whole day
 * partitions at its own retention (docs/operations.md §9.2).
 * Store it with `setProjectRetentionDays` (@sluice/db).
 */
export function projectRetentionDaysField(instanceRetentionDays: number) {
  return z
    .number()
    .int()
    .min(1)
    .max(instanceRetentionDays, {
      error: `must be at most the instance's retention (${instanceRetentionDays} days)`,
    })
    .nullable();
}
