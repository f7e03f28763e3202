import { z } from "zod";

/**
 * A DSN key's rate limit as Sentry's `RateLimitSerializer` reads it
 * (src/sentry/api/serializers/rest_framework/project_key.py): `count` at
 * least 0, `window` 0 to 86,400 seconds (a day); either may be null. Used by
 * `PUT …/keys/{key_id}/` and the project keys page alike.
 */
export const keyRateLimitInput = z.object({
  count: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  window: z.number().int().min(0).max(86_400).nullable().optional(),
});

/**
 * The limit to store for a parsed `rateLimit`: `{count, window}`, or null
 * (clear it) when the input is null or either field is null or absent, as
 * Sentry stores no half limit.
 */
export function keyRateLimitOf(
  input: z.infer<typeof keyRateLimitInput> | null,
): { count: number; window: number } | null {
  if (!input) return null;
  const { count, window } = input;
  return count === null || count === undefined || window === null || window === undefined
    ? null
    : { count, window };
}
