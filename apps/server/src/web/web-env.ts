export type { WebEnv } from "../accounts/session-middleware.ts";

/** A failure that becomes an error page with this status (404, 403, 400). */
export class PageError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** A page asked for under an old address (a merged issue's id): answered with a redirect to `location`. */
export class PageRedirect extends Error {
  constructor(readonly location: string) {
    super(`moved to ${location}`);
  }
}
