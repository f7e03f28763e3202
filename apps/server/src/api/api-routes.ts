import { Hono } from "hono";
import { getCookie } from "hono/cookie";
import { loadAccess } from "../accounts/access.ts";
import { callerForToken } from "../accounts/authenticate.ts";
import { csrfProblem, viewerOf } from "../accounts/session-middleware.ts";
import { SESSION_COOKIE } from "../accounts/sessions.ts";
import type { Services } from "../services.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, apiErrorResponse } from "./api-error.ts";
import { registerAuditLogRoutes } from "./audit-log-routes.ts";
import { registerEventRoutes } from "./event-routes.ts";
import { registerFleetRoutes } from "./fleet-routes.ts";
import { registerGroupingRoutes } from "./grouping-routes.ts";
import { registerIssueRoutes } from "./issue-routes.ts";
import { registerMemberRoutes } from "./member-routes.ts";
import { registerOrganizationRoutes } from "./organization-routes.ts";
import { registerQuotaRoutes } from "./quota-routes.ts";
import { registerReleaseFileRoutes } from "./release-file-routes.ts";
import { registerReleaseRoutes } from "./release-routes.ts";
import { registerRuleRoutes } from "./rule-routes.ts";
import { registerTeamRoutes } from "./team-routes.ts";
import { registerTokenRoutes } from "./token-routes.ts";
import { registerUploadRoutes } from "./upload-routes.ts";
import { registerUserRoutes } from "./user-routes.ts";

/**
 * The Sentry REST API under `/api/0/` (docs/protocol.md §9): a bearer token
 * or a session cookie (with its CSRF token on state-changing requests) on
 * every route, JSON on every answer, `{"detail": ...}` errors. What the
 * caller reaches is its `Access` (accounts/access.ts).
 */
export function createApiRoutes(services: Services): Hono<ApiEnv> {
  const api = new Hono<ApiEnv>({ strict: false });
  api.onError((error, c) =>
    apiErrorResponse(c, error, (e) =>
      services.log.error({ err: e, path: c.req.path }, "api request failed"),
    ),
  );
  api.notFound((c) => c.json({ detail: "not found" }, 404));
  // Only the REST API needs credentials: other paths (pages, favicon) are
  // not this module's and get a 404, not a 401.
  api.use("/api/0/*", async (c, next) => {
    c.set("services", services);
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match) {
      const caller = await callerForToken(services, match[1] as string);
      if (!caller) throw new ApiError(401, "Invalid token");
      c.set("access", loadAccess(services, caller));
      return next();
    }
    const viewer = getCookie(c, SESSION_COOKIE) ? await viewerOf(services, c) : null;
    if (viewer) {
      const problem = await csrfProblem(c, services.config.publicUrl, viewer);
      if (problem) throw new ApiError(403, problem);
      c.set("access", loadAccess(services, viewer));
      return next();
    }
    if (c.req.path.replace(/\/+$/, "") === "/api/0" && c.req.method === "GET") {
      return c.json({ version: "0", user: null, auth: null });
    }
    throw new ApiError(401, "Authentication credentials were not provided.");
  });
  api.get("/api/0", (c) => {
    const { caller, maxScopes } = c.get("access");
    const user =
      caller.kind === "user"
        ? {
            id: String(caller.user.id),
            email: caller.user.email,
            name: caller.user.name ?? caller.user.email,
          }
        : null;
    return c.json({ version: "0", user, auth: { scopes: [...maxScopes] } });
  });
  registerOrganizationRoutes(api);
  registerMemberRoutes(api);
  registerTeamRoutes(api);
  registerTokenRoutes(api);
  registerUserRoutes(api);
  registerAuditLogRoutes(api);
  registerIssueRoutes(api);
  registerEventRoutes(api);
  registerReleaseRoutes(api);
  registerUploadRoutes(api);
  registerReleaseFileRoutes(api);
  registerGroupingRoutes(api);
  registerQuotaRoutes(api);
  registerRuleRoutes(api);
  registerFleetRoutes(api);
  return api;
}
