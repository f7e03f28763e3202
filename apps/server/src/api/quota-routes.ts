import {
  deleteQuota,
  findSpikeProtection,
  listQuotas,
  type QuotaRow,
  type SpikeProtectionRow,
  setSpikeProtectionEnabled,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { addQuota, quotaInput } from "../quota-settings.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { registerKeyRoutes } from "./key-routes.ts";
import { idParam, organizationParam, projectParam } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";
import { registerStatsRoutes } from "./stats-routes.ts";

const spikeInput = z.object({ isEnabled: z.boolean() });

function serializeQuota(row: QuotaRow, projectSlug: string | null) {
  return {
    id: String(row.id),
    scope: row.projectId === null ? "organization" : "project",
    project: projectSlug,
    categories: row.categories,
    limit: row.quotaLimit,
    window: row.windowSeconds,
    reasonCode: row.reasonCode || null,
    dateCreated: row.createdAt.toISOString(),
  };
}

function serializeSpike(c: Context<ApiEnv>, row: SpikeProtectionRow | null) {
  const { spike } = c.get("services").config.quotas;
  return {
    isEnabled: row?.enabled ?? true,
    isActive: row?.active ?? false,
    bound: row?.bound ?? null,
    startedAt: row?.startedAt?.toISOString() ?? null,
    endedAt: row?.endedAt?.toISOString() ?? null,
    trips: row?.trips ?? 0,
    multiple: spike.multiple,
    floorPerMinute: spike.floorPerMinute,
    trailingMinutes: spike.trailingMinutes,
  };
}

async function addQuotaOf(
  c: Context<ApiEnv>,
  organizationId: number,
  projectId: number | null,
): Promise<QuotaRow> {
  const body = await readJsonBody(c, quotaInput);
  const added = await addQuota(c.get("services").db.orm, organizationId, projectId, body);
  if (!added.ok) throw new ApiError(400, added.detail);
  return added.row;
}

/**
 * Rate limits and quotas (docs/protocol.md §5.6): DSN key limits
 * (key-routes.ts), organization and project quotas, a project's spike
 * protection, and `stats_v2` (stats-routes.ts). Ingest reads changes within
 * 10 s.
 */
export function registerQuotaRoutes(api: Hono<ApiEnv>): void {
  registerKeyRoutes(api);
  registerStatsRoutes(api);

  api.get("/api/0/organizations/:org/quotas", requireScope("org:read"), async (c) => {
    const org = await organizationParam(c);
    const rows = await listQuotas(c.get("services").db.orm, org.id, null);
    return c.json(rows.map((row) => serializeQuota(row, null)));
  });
  api.post("/api/0/organizations/:org/quotas", requireScope("org:write"), async (c) => {
    const org = await organizationParam(c);
    return c.json(serializeQuota(await addQuotaOf(c, org.id, null), null), 201);
  });
  api.delete("/api/0/organizations/:org/quotas/:quotaId", requireScope("org:write"), async (c) => {
    const org = await organizationParam(c);
    const id = idParam(c, "quotaId");
    if (id === null || !(await deleteQuota(c.get("services").db.orm, org.id, null, id)))
      throw notFound("quota");
    return c.body(null, 204);
  });

  api.get("/api/0/projects/:org/:project/quotas", requireScope("project:read"), async (c) => {
    const project = await projectParam(c);
    const rows = await listQuotas(c.get("services").db.orm, project.organizationId, project.id);
    return c.json(rows.map((row) => serializeQuota(row, project.slug)));
  });
  api.post("/api/0/projects/:org/:project/quotas", requireScope("project:write"), async (c) => {
    const project = await projectParam(c);
    const row = await addQuotaOf(c, project.organizationId, project.id);
    return c.json(serializeQuota(row, project.slug), 201);
  });
  api.delete(
    "/api/0/projects/:org/:project/quotas/:quotaId",
    requireScope("project:write"),
    async (c) => {
      const project = await projectParam(c);
      const id = idParam(c, "quotaId");
      const { orm } = c.get("services").db;
      if (id === null || !(await deleteQuota(orm, project.organizationId, project.id, id)))
        throw notFound("quota");
      return c.body(null, 204);
    },
  );

  api.get(
    "/api/0/projects/:org/:project/spike-protection",
    requireScope("project:read"),
    async (c) => {
      const project = await projectParam(c);
      return c.json(
        serializeSpike(c, await findSpikeProtection(c.get("services").db.orm, project.id)),
      );
    },
  );
  api.put(
    "/api/0/projects/:org/:project/spike-protection",
    requireScope("project:write"),
    async (c) => {
      const project = await projectParam(c);
      const body = await readJsonBody(c, spikeInput);
      const row = await setSpikeProtectionEnabled(
        c.get("services").db.orm,
        project.id,
        body.isEnabled,
      );
      return c.json(serializeSpike(c, row));
    },
  );
}
