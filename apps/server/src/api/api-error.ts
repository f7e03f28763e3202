import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";

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

/**
 * Maps any error of an API route to its answer. An ApiError answers itself;
 * a Hono HTTPException its status; a ZodError that escaped a route is input
 * that failed validation (400 naming the field; it is also logged, since a
 * response serializer's ZodError would be a bug of ours); a Postgres data
 * exception (SQLSTATE class 22: a value its column refuses) is a 400 too.
 * Anything else is logged, a database error without its SQL or parameters,
 * and answered 500.
 */
export function apiErrorResponse(
  c: Context,
  error: unknown,
  log: (error: unknown) => void,
): Response {
  if (error instanceof ApiError) return c.json({ detail: error.detail }, error.status);
  if (error instanceof HTTPException) {
    return c.json({ detail: error.message || "bad request" }, error.status as ContentfulStatusCode);
  }
  if (error instanceof ZodError) {
    log(error);
    const issue = error.issues[0];
    return c.json({ detail: `${issue?.path.join(".") || "request"}: ${issue?.message}` }, 400);
  }
  const database = databaseErrorOf(error);
  if (database?.sqlstate.startsWith("22")) {
    return c.json({ detail: `invalid input (SQLSTATE ${database.sqlstate})` }, 400);
  }
  log(database ?? error);
  return c.json({ detail: "internal error" }, 500);
}

/**
 * The pg error in `error` (drizzle wraps it as `cause`), as a log line may
 * show it: SQLSTATE, routine and message, never the statement or its
 * parameters (they carry user data). Null for other errors.
 */
function databaseErrorOf(
  error: unknown,
): { type: "DatabaseError"; sqlstate: string; routine: unknown; message: unknown } | null {
  let e = error;
  for (let depth = 0; depth < 3 && e !== null && typeof e === "object"; depth++) {
    const { code, routine, message } = e as {
      code?: unknown;
      routine?: unknown;
      message?: unknown;
    };
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
      return { type: "DatabaseError", sqlstate: code, routine, message };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
