import { listProjects } from "@sluice/db";
import type { Hono } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { organizationAndAccess, organizationParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { requireScope } from "./require-scope.ts";
import { serializeOrganization, serializeProject } from "./serializers.ts";

/** Organizations and their projects (one project: project-settings-routes.ts; DSN keys: key-routes.ts). */
export function registerOrganizationRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/organizations", requireScope("org:read"), async (c) => {
    const visible = await c.get("access").organizations();
    const rows = await pageOf(c, async (limit, offset) => visible.slice(offset, offset + limit));
    return c.json(rows.map(serializeOrganization));
  });

  api.get("/api/0/organizations/:org", requireScope("org:read"), async (c) => {
    return c.json(serializeOrganization(await organizationParam(c)));
  });

  api.get("/api/0/organizations/:org/projects", requireScope("project:read"), async (c) => {
    const { db } = c.get("services");
    const { org, access } = await organizationAndAccess(c);
    const rows = await pageOf(c, (limit, offset) =>
      listProjects(db.orm, org.id, limit, offset, access.projectIds),
    );
    return c.json(rows.map((p) => serializeProject(p, org)));
  });
}
