import { listProjectKeys, listProjects } from "@sluice/db";
import { formatDsn } from "@sluice/protocol";
import type { Hono } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { organizationAndAccess, organizationParam, projectParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { requireScope } from "./require-scope.ts";
import { serializeOrganization, serializeProject } from "./serializers.ts";

/** Organizations, their projects and the projects' DSN keys (one project: project-settings-routes.ts). */
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

  api.get("/api/0/projects/:org/:project/keys", requireScope("project:read"), async (c) => {
    const { db, config } = c.get("services");
    const project = await projectParam(c);
    const keys = await listProjectKeys(db.orm, project.id);
    return c.json(
      keys.map((key) => {
        const dsn = formatDsn(config.publicUrl, key.publicKey, project.id);
        return {
          id: key.publicKey,
          name: key.label,
          label: key.label,
          public: key.publicKey,
          secret: null,
          projectId: project.id,
          isActive: key.isActive,
          rateLimit: null,
          dsn: { public: dsn, secret: dsn },
          dateCreated: key.createdAt.toISOString(),
        };
      }),
    );
  });
}
