import type { Hono } from "hono";
import { liveNodes, serializeNode } from "../fleet-nodes.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";

/**
 * `GET /api/0/internal/fleet/`: the live nodes of the registry, as
 * `sluice fleet --json` prints them. Only an instance-admin token reaches
 * it; like Sentry's `/api/0/internal/` routes (SuperuserPermission), any
 * other caller gets 403 with Sentry's permission message.
 */
export function registerFleetRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/internal/fleet", async (c) => {
    if (c.get("access").caller.kind !== "instance-admin")
      throw new ApiError(403, "You do not have permission to perform this action.");
    const nodes = await liveNodes(c.get("services"));
    return c.json(nodes.map(serializeNode));
  });
}
