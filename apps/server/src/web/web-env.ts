import type { Services } from "../services.ts";
import type { Viewer } from "./page-viewer.ts";

/** Hono environment of the web pages: the services and who is signed in (null: nobody). */
export type WebEnv = { Variables: { services: Services; viewer: Viewer } };

/** A failure that becomes an error page with this status (404, 403, 400). */
export class PageError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}
