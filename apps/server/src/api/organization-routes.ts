import { listOrganizations, listProjects } from "@sluice/db";
import type { Hono } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { organizationParam, projectParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { requireScope } from "./require-scope.ts";
import { serializeOrganization, serializeProject } from "./serializers.ts";

/** Organizations and their projects (DSN keys: key-routes.ts). */
export function registerOrganizationRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/organizations", requireScope("org:read"), async (c) => {
    const { db } = c.get("services");
    const rows = await pageOf(c, (limit, offset) => listOrganizations(db.orm, limit, offset));
    return c.json(rows.map(serializeOrganization));
  });

  api.get("/api/0/organizations/:org", requireScope("org:read"), async (c) => {
    return c.json(serializeOrganization(await organizationParam(c)));
  });

  api.get("/api/0/organizations/:org/projects", requireScope("project:read"), async (c) => {
    const { db } = c.get("services");
    const org = await organizationParam(c);
    const rows = await pageOf(c, (limit, offset) => listProjects(db.orm, org.id, limit, offset));
    return c.json(rows.map((p) => serializeProject(p, org)));
  });

  api.get("/api/0/projects/:org/:project", requireScope("project:read"), async (c) => {
    const org = await organizationParam(c);
    return c.json(serializeProject(await projectParam(c), org));
  });
}
