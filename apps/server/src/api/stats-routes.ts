import {
  listProjects,
  USAGE_GROUP_BY,
  USAGE_OUTCOMES,
  UsageStatsError,
  type UsageWindow,
  usageStats,
  usageWindow,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";
import { parseInput } from "./input.ts";
import { namedProjects, organizationParam } from "./lookups.ts";
import { requireScope } from "./require-scope.ts";

const MAX_VALUES = 100;

const list = (max: number) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).filter(Boolean))
    .pipe(z.array(z.string().max(64)).max(max));

const statsQuery = z.object({
  field: z.enum(["sum(quantity)", "sum(times_seen)"], {
    error: "field must be sum(quantity) or sum(times_seen)",
  }),
  groupBy: list(USAGE_GROUP_BY.length)
    .pipe(z.array(z.enum(USAGE_GROUP_BY)))
    .default([]),
  interval: z.string().max(16).default("1h"),
  statsPeriod: z.string().max(16).optional(),
  start: z.iso.datetime({ offset: true }).optional(),
  end: z.iso.datetime({ offset: true }).optional(),
  category: list(MAX_VALUES).optional(),
  outcome: list(USAGE_OUTCOMES.length)
    .pipe(z.array(z.enum(USAGE_OUTCOMES)))
    .optional(),
  reason: list(MAX_VALUES).optional(),
  project: list(MAX_VALUES).optional(),
});

/**
 * Sentry's organization usage stats, `GET /api/0/organizations/{org}/stats_v2/`
 * (src/sentry/api/endpoints/organization_stats_v2.py), read from the
 * `outcomes` counters: `field=sum(quantity)` (`sum(times_seen)` counts
 * outcome rows, Sluice's nearest equivalent), `groupBy` any of outcome,
 * category, project, reason; `interval` whole hours; `statsPeriod` or
 * `start`+`end`; filters `category` (`error` means default, error and
 * security, as in Sentry), `outcome`, `reason`, `project` (ids or slugs;
 * `-1` or absent: all). The answer is Sentry's: `start`, `end`,
 * `intervals`, and `groups` of `{by, totals, series}`.
 */
export function registerStatsRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/organizations/:org/stats_v2", requireScope("org:read"), async (c) => {
    const org = await organizationParam(c);
    const q = parseInput(statsQuery, queryWithLists(c), "query");
    let window: UsageWindow;
    try {
      window = usageWindow(q, Date.now());
    } catch (error) {
      if (error instanceof UsageStatsError) throw new ApiError(400, error.message);
      throw error;
    }
    const { db } = c.get("services");
    const named = (q.project ?? []).filter((p) => p !== "-1");
    const projects =
      named.length > 0
        ? await namedProjects(c, org.id, named)
        : await listProjects(db.orm, org.id, 10_000, 0);
    if (!projects) throw new ApiError(400, "project: not a project of this organization");
    return c.json(
      await usageStats(db.pool, {
        projectIds: projects.map((p) => p.id),
        window,
        groupBy: q.groupBy,
        field: q.field,
        categories: q.category ?? null,
        outcomes: q.outcome ?? null,
        reasons: q.reason ?? null,
      }),
    );
  });
}

/** Repeated query parameters (`groupBy=a&groupBy=b`) as lists, single ones as strings. */
function queryWithLists(c: Context<ApiEnv>): Record<string, string | string[]> {
  const all = c.req.queries();
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(all)) {
    out[name] = values.length === 1 ? (values[0] as string) : values;
  }
  return out;
}
