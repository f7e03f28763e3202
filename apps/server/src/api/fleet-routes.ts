import type { Hono } from "hono";
import { isInstanceAdmin } from "../accounts/access.ts";
import { liveNodes, serializeNode } from "../fleet-nodes.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";

/**
 * `GET /api/0/internal/fleet/`: the live nodes of the registry, as
 * `sluice fleet --json` prints them. Only an instance admin reaches it (an
 * instance-admin token or a superuser's session, `isInstanceAdmin`): like
 * Sentry's `/api/0/internal/` routes (getsentry/sentry
 * `src/sentry/api/endpoints/internal_quotas.py`: `SuperuserPermission`),
 * any other caller gets 403 with Django REST framework's PermissionDenied
 * message, which Sentry answers.
 */
export function registerFleetRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/internal/fleet", async (c) => {
    if (!isInstanceAdmin(c.get("access").caller))
      throw new ApiError(403, "You do not have permission to perform this action.");
    const nodes = await liveNodes(c.get("services"));
    return c.json(nodes.map(serializeNode));
  });
}
