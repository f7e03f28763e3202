import type { MiddlewareHandler } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";

/**
 * Declares the scope a route needs, as Sentry's permission classes do. A
 * caller that holds it nowhere is refused here (403); the lookups in
 * lookups.ts check it again in the organization the path names.
 */
export function requireScope(scope: string): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (!c.get("access").maxScopes.has(scope)) throw forbidden(scope);
    c.set("scope", scope);
    await next();
  };
}

/** Sentry's 403 for a missing scope. */
export function forbidden(scope: string): ApiError {
  return new ApiError(403, `You do not have permission to perform this action (needs ${scope}).`);
}
