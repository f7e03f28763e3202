import { listProjects, type OutcomeStatsRow, outcomeStats } from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";
import { parseInput } from "./input.ts";
import { namedProjects, organizationParam } from "./lookups.ts";
import { requireScope } from "./require-scope.ts";

const HOUR_S = 3_600;
const UNIT_SECONDS: Record<string, number> = { m: 60, h: HOUR_S, d: 86_400, w: 604_800 };
/** Longest period served (Sentry keeps 90 days of outcomes). */
const MAX_PERIOD_S = 90 * 86_400;
const MAX_VALUES = 100;
const GROUP_BY = ["outcome", "category", "project", "reason"] as const;
const OUTCOMES = [
  "accepted",
  "filtered",
  "filtered_sampling",
  "rate_limited",
  "invalid",
  "abuse",
  "client_discard",
  "cardinality_limited",
] as const;
/** Sentry's stats `category=error` means every error category (`DataCategory.error_categories()`). */
const CATEGORY_ALIASES: Record<string, string[]> = { error: ["default", "error", "security"] };

/** `24h`, `14d`, `30m`: seconds, or null. */
function duration(value: string): number | null {
  const match = /^(\d{1,6})([mhdw])$/.exec(value);
  if (!match) return null;
  return Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number);
}

const list = (max: number) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).filter(Boolean))
    .pipe(z.array(z.string().max(64)).max(max));

const statsQuery = z.object({
  field: z.enum(["sum(quantity)", "sum(times_seen)"], {
    error: "field must be sum(quantity) or sum(times_seen)",
  }),
  groupBy: list(GROUP_BY.length)
    .pipe(z.array(z.enum(GROUP_BY)))
    .default([]),
  interval: z.string().max(16).default("1h"),
  statsPeriod: z.string().max(16).optional(),
  start: z.iso.datetime({ offset: true }).optional(),
  end: z.iso.datetime({ offset: true }).optional(),
  category: list(MAX_VALUES).optional(),
  outcome: list(OUTCOMES.length)
    .pipe(z.array(z.enum(OUTCOMES)))
    .optional(),
  reason: list(MAX_VALUES).optional(),
  project: list(MAX_VALUES).optional(),
});

/** The query's window, in whole intervals: [start, end) and the interval (seconds). */
function window(q: z.infer<typeof statsQuery>, nowMs: number) {
  const interval = duration(q.interval);
  if (interval === null || interval % HOUR_S !== 0) {
    throw new ApiError(400, "interval must be a whole number of hours (1h, 6h, 1d, …)");
  }
  let startS: number;
  let endS: number;
  if (q.start || q.end) {
    if (!q.start || !q.end) throw new ApiError(400, "start and end go together");
    startS = Date.parse(q.start) / 1000;
    endS = Date.parse(q.end) / 1000;
  } else {
    const period = duration(q.statsPeriod ?? "24h");
    if (period === null) throw new ApiError(400, "statsPeriod must look like 24h, 14d or 30m");
    endS = nowMs / 1000;
    startS = endS - period;
  }
  // Sentry rounds the window out to whole intervals.
  startS = Math.floor(startS / interval) * interval;
  endS = Math.ceil(endS / interval) * interval;
  if (endS <= startS) throw new ApiError(400, "end must be after start");
  if (endS - startS > MAX_PERIOD_S) throw new ApiError(400, "the period is longer than 90 days");
  return { start: new Date(startS * 1000), end: new Date(endS * 1000), interval };
}

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
    const { start, end, interval } = window(q, Date.now());
    const { db } = c.get("services");
    const named = (q.project ?? []).filter((p) => p !== "-1");
    const projects =
      named.length > 0
        ? await namedProjects(c, org.id, named)
        : await listProjects(db.orm, org.id, 10_000, 0);
    if (!projects) throw new ApiError(400, "project: not a project of this organization");
    const categories = q.category?.flatMap((name) => CATEGORY_ALIASES[name] ?? [name]) ?? null;
    const rows = await outcomeStats(db.pool, {
      projectIds: projects.map((p) => p.id),
      start,
      end,
      intervalSeconds: interval,
      categories,
      outcomes: q.outcome ?? null,
      reasons: q.reason ?? null,
    });
    const intervals: string[] = [];
    for (let t = start.getTime(); t < end.getTime(); t += interval * 1000) {
      intervals.push(new Date(t).toISOString().replace(".000Z", "Z"));
    }
    return c.json({
      start: intervals[0] ?? start.toISOString(),
      end: end.toISOString().replace(".000Z", "Z"),
      intervals,
      groups: groupRows(rows, q.groupBy, q.field, start, interval, intervals.length),
    });
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

function groupRows(
  rows: OutcomeStatsRow[],
  groupBy: (typeof GROUP_BY)[number][],
  field: string,
  start: Date,
  interval: number,
  buckets: number,
) {
  const groups = new Map<string, { by: Record<string, string | number>; series: number[] }>();
  for (const row of rows) {
    const by: Record<string, string | number> = {};
    for (const name of groupBy) by[name] = name === "project" ? row.projectId : row[name];
    const key = JSON.stringify(by);
    let group = groups.get(key);
    if (!group) {
      group = { by, series: new Array(buckets).fill(0) };
      groups.set(key, group);
    }
    const index = Math.floor((row.bucket.getTime() - start.getTime()) / (interval * 1000));
    if (index >= 0 && index < buckets) {
      group.series[index] =
        (group.series[index] ?? 0) + (field === "sum(quantity)" ? row.quantity : 1);
    }
  }
  return [...groups.values()].map((g) => ({
    by: g.by,
    totals: { [field]: g.series.reduce((a, b) => a + b, 0) },
    series: { [field]: g.series },
  }));
}
