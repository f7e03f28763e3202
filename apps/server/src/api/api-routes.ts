import { findApiToken } from "@sluice/db";
import { Hono } from "hono";
import type { Services } from "../services.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, apiErrorResponse } from "./api-error.ts";
import { hashApiToken } from "./api-token.ts";
import { registerEventRoutes } from "./event-routes.ts";
import { registerIssueRoutes } from "./issue-routes.ts";
import { registerOrganizationRoutes } from "./organization-routes.ts";
import { registerReleaseFileRoutes } from "./release-file-routes.ts";
import { registerReleaseRoutes } from "./release-routes.ts";
import { registerRuleRoutes } from "./rule-routes.ts";
import { registerUploadRoutes } from "./upload-routes.ts";

/**
 * The Sentry REST API under `/api/0/` (docs/protocol.md §9): bearer-token
 * auth on every route, JSON on every answer, `{"detail": ...}` errors.
 */
export function createApiRoutes(services: Services): Hono<ApiEnv> {
  const api = new Hono<ApiEnv>({ strict: false });
  api.onError((error, c) =>
    apiErrorResponse(c, error, (e) =>
      services.log.error({ err: e, path: c.req.path }, "api request failed"),
    ),
  );
  api.notFound((c) => c.json({ detail: "not found" }, 404));
  // Only the REST API needs a token: other paths (pages, favicon) are not
  // this module's and get a 404, not a 401.
  api.use("/api/0/*", async (c, next) => {
    c.set("services", services);
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      if (c.req.path.replace(/\/+$/, "") === "/api/0" && c.req.method === "GET") {
        return c.json({ version: "0", user: null, auth: null });
      }
      throw new ApiError(401, "Authentication credentials were not provided.");
    }
    const token = await findApiToken(services.db.orm, hashApiToken(match[1] as string));
    if (!token) throw new ApiError(401, "Invalid token");
    c.set("token", token);
    await next();
  });
  api.get("/api/0", (c) =>
    c.json({ version: "0", user: null, auth: { scopes: c.get("token").scopes } }),
  );
  registerOrganizationRoutes(api);
  registerIssueRoutes(api);
  registerEventRoutes(api);
  registerReleaseRoutes(api);
  registerUploadRoutes(api);
  registerReleaseFileRoutes(api);
  registerRuleRoutes(api);
  return api;
}
