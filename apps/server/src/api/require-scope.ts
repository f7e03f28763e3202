import type { MiddlewareHandler } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";

/** Rejects a token without `scope` (403), as Sentry's permission classes do. */
export function requireScope(scope: string): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (!c.get("token").scopes.includes(scope)) {
      throw new ApiError(
        403,
        `You do not have permission to perform this action (needs ${scope}).`,
      );
    }
    await next();
  };
}
