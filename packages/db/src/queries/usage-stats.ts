import type { Queryable } from "../database.ts";
import { type OutcomeStatsRow, outcomeStats } from "./quotas.ts";

/**
 * Sentry's usage stats (`stats_v2`) over the `outcomes` counters: the
 * window, the filters and the grouping that both the REST endpoint and the
 * organization stats page ask for, so the two always show the same numbers.
 * Shapes follow getsentry/sentry `src/sentry/snuba/outcomes.py` and
 * `src/sentry/api/endpoints/organization_stats_v2.py`.
 */

const HOUR_S = 3_600;
const UNIT_SECONDS: Record<string, number> = { m: 60, h: HOUR_S, d: 86_400, w: 604_800 };
/** Longest period served (Sentry keeps 90 days of outcomes). */
const MAX_PERIOD_S = 90 * 86_400;

export const USAGE_GROUP_BY = ["outcome", "category", "project", "reason"] as const;
export type UsageGroupBy = (typeof USAGE_GROUP_BY)[number];
export type UsageField = "sum(quantity)" | "sum(times_seen)";

/** Sentry's outcomes (relay `Outcome`), as `stats_v2` names them. */
export const USAGE_OUTCOMES = [
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

/** A window the caller asked for that cannot be served (the API answers 400 with the message). */
export class UsageStatsError extends Error {}

/** `24h`, `14d`, `30m`: seconds, or null. */
function duration(value: string): number | null {
  const match = /^(\d{1,6})([mhdw])$/.exec(value);
  if (!match) return null;
  return Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number);
}

export type UsageWindow = { start: Date; end: Date; intervalSeconds: number };

/**
 * The window of a stats query, rounded out to whole intervals as Sentry
 * does: `interval` whole hours (`1h`, `6h`, `1d`), and either `statsPeriod`
 * (`24h`, `14d`; default 24h, ending at `nowMs`) or both `start` and `end`
 * (ISO dates). At most 90 days. Throws `UsageStatsError` otherwise.
 */
export function usageWindow(
  q: { interval: string; statsPeriod?: string; start?: string; end?: string },
  nowMs: number,
): UsageWindow {
  const interval = duration(q.interval);
  if (interval === null || interval % HOUR_S !== 0) {
    throw new UsageStatsError("interval must be a whole number of hours (1h, 6h, 1d, …)");
  }
  let startS: number;
  let endS: number;
  if (q.start || q.end) {
    if (!q.start || !q.end) throw new UsageStatsError("start and end go together");
    startS = Date.parse(q.start) / 1000;
    endS = Date.parse(q.end) / 1000;
  } else {
    const period = duration(q.statsPeriod ?? "24h");
    if (period === null) throw new UsageStatsError("statsPeriod must look like 24h, 14d or 30m");
    endS = nowMs / 1000;
    startS = endS - period;
  }
  startS = Math.floor(startS / interval) * interval;
  endS = Math.ceil(endS / interval) * interval;
  if (!(endS > startS)) throw new UsageStatsError("end must be after start");
  if (endS - startS > MAX_PERIOD_S) throw new UsageStatsError("the period is longer than 90 days");
  return { start: new Date(startS * 1000), end: new Date(endS * 1000), intervalSeconds: interval };
}

export type UsageStatsQuery = {
  projectIds: number[];
  window: UsageWindow;
  groupBy: UsageGroupBy[];
  field: UsageField;
  /** Sentry's category names (`error` stands for default, error and security); null: all. */
  categories: string[] | null;
  outcomes: string[] | null;
  reasons: string[] | null;
};

export type UsageGroup = {
  by: Record<string, string | number>;
  totals: Record<string, number>;
  series: Record<string, number[]>;
};

/** Sentry's `stats_v2` answer: ISO `start`/`end` (no milliseconds), bucket starts, groups. */
export type UsageStats = { start: string; end: string; intervals: string[]; groups: UsageGroup[] };

const iso = (d: Date) => d.toISOString().replace(".000Z", "Z");

/**
 * The usage of `projectIds` in the window, grouped by `groupBy` (`project`
 * gives the project id), each group with its total and one value per
 * interval. `sum(times_seen)` counts outcome rows, Sluice's nearest
 * equivalent of Sentry's. An empty project list gives empty groups.
 */
export async function usageStats(db: Queryable, q: UsageStatsQuery): Promise<UsageStats> {
  const { start, end, intervalSeconds } = q.window;
  const rows = await outcomeStats(db, {
    projectIds: q.projectIds,
    start,
    end,
    intervalSeconds,
    categories: q.categories?.flatMap((name) => CATEGORY_ALIASES[name] ?? [name]) ?? null,
    outcomes: q.outcomes,
    reasons: q.reasons,
  });
  const intervals: string[] = [];
  for (let t = start.getTime(); t < end.getTime(); t += intervalSeconds * 1000) {
    intervals.push(iso(new Date(t)));
  }
  return {
    start: intervals[0] ?? iso(start),
    end: iso(end),
    intervals,
    groups: groupRows(rows, q.groupBy, q.field, start, intervalSeconds, intervals.length),
  };
}

function groupRows(
  rows: OutcomeStatsRow[],
  groupBy: UsageGroupBy[],
  field: UsageField,
  start: Date,
  interval: number,
  buckets: number,
): UsageGroup[] {
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
