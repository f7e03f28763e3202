import { timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { Services } from "../services.ts";
import type { Viewer } from "./access.ts";
import { resolveSession, SESSION_COOKIE } from "./sessions.ts";

/** Hono environment of pages: the services and the signed-in viewer, if any. */
export type WebEnv = { Variables: { services: Services; viewer: Viewer | null } };

/** The viewer of a request's session cookie, or null. */
export async function viewerOf(services: Services, c: Context): Promise<Viewer | null> {
  const secret = getCookie(c, SESSION_COOKIE);
  if (!secret) return null;
  const live = await resolveSession(services, secret);
  if (!live) return null;
  const { user, session } = live;
  return {
    user: { id: user.id, email: user.email, name: user.name },
    sessionId: String(session.id),
    csrfToken: session.csrfToken,
    caller: { kind: "user", user, token: null, session },
  };
}

/** Sets `services` and `viewer` (null without a live session) for the routes after it. */
export function sessionAuth(services: Services): MiddlewareHandler<WebEnv> {
  return async (c, next) => {
    c.set("services", services);
    c.set("viewer", await viewerOf(services, c));
    await next();
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** True when two strings are equal, in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Whether a state-changing request may go on: an `Origin` (or, without
 * one, a `Referer`) from another site is refused (this also covers the
 * sign-in form, before any session exists); with a session, the request
 * must also carry the session's CSRF token, as form field `csrf` or header
 * `X-CSRFToken` (Sentry's header name). Returns the reason when refused.
 */
export async function csrfProblem(
  c: Context,
  publicUrl: string,
  viewer: Viewer | null,
): Promise<string | null> {
  if (SAFE_METHODS.has(c.req.method)) return null;
  const origin = c.req.header("origin") ?? c.req.header("referer");
  if (origin && origin !== "null") {
    let from: string;
    try {
      from = new URL(origin).origin;
    } catch {
      return "The request's Origin is not a URL.";
    }
    const allowed = new Set([new URL(publicUrl).origin, new URL(c.req.url).origin]);
    if (!allowed.has(from)) return "The request came from another site.";
  }
  if (!viewer) return null;
  let token = c.req.header("x-csrftoken") ?? "";
  if (!token) {
    const type = c.req.header("content-type") ?? "";
    if (
      type.startsWith("application/x-www-form-urlencoded") ||
      type.startsWith("multipart/form-data")
    ) {
      const form = await c.req.parseBody();
      token = typeof form.csrf === "string" ? form.csrf : "";
    }
  }
  return token && sameSecret(token, viewer.csrfToken)
    ? null
    : "The form has expired or did not come from this site (CSRF check failed). Reload the page and try again.";
}

/** Refuses (403, as a page) a state-changing request that fails `csrfProblem`. */
export function requireCsrf(): MiddlewareHandler<WebEnv> {
  return async (c, next) => {
    const services = c.get("services");
    const problem = await csrfProblem(c, services.config.publicUrl, c.get("viewer"));
    if (problem)
      return c.html(
        `<!doctype html><title>Forbidden</title><h1>Forbidden</h1><p>${problem}</p>`,
        403,
      );
    await next();
  };
}
