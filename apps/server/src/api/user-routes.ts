import type { Hono } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { notFound } from "./api-error.ts";

/**
 * `GET /api/0/users/me/` in Sentry's UserSerializer shape, for the caller
 * that is a user (a session or a user auth token); tokens of no user get 404.
 * `isSuperuser` is the user's flag (getsentry/sentry
 * `src/sentry/users/api/serializers/user.py`), whatever the credential.
 */
export function registerUserRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/users/me", (c) => {
    const { caller } = c.get("access");
    if (caller.kind !== "user") throw notFound("user");
    const { user } = caller;
    return c.json({
      id: String(user.id),
      name: user.name ?? user.email,
      username: user.email,
      email: user.email,
      isActive: user.isActive,
      hasPasswordAuth: user.passwordHash !== null,
      dateJoined: user.createdAt.toISOString(),
      lastLogin: user.lastLoginAt?.toISOString() ?? null,
      isSuperuser: user.isSuperuser,
      emails: [{ id: String(user.id), email: user.email, is_verified: true }],
    });
  });
}
