import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The management API's one error: a status and Sentry's `{"detail": ...}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly detail: string,
  ) {
    super(detail);
  }
}

export const notFound = (what: string) => new ApiError(404, `${what} not found`);

/** Maps any error of an API route to its answer; unexpected ones are logged and answered 500. */
export function apiErrorResponse(
  c: Context,
  error: unknown,
  log: (error: unknown) => void,
): Response {
  if (error instanceof ApiError) return c.json({ detail: error.detail }, error.status);
  log(error);
  return c.json({ detail: "internal error" }, 500);
}
