import { type UsageStats, usageStats, usageWindow } from "@sluice/db";
import type { Context, Hono } from "hono";
import { exactTime, formatCount } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { orgPage, requirePageScope } from "./web-lookups.ts";

/**
 * The organization's usage, Sentry's stats page `/organizations/{org}/stats/`
 * (static/app/views/organizationStats): per data category, what was
 * accepted and what was dropped (filtered, rate limited, invalid, discarded
 * by the client) over 24 hours, 7 or 30 days, for one project or all the
 * viewer can see. The numbers are those of `GET /api/0/organizations/{org}/stats_v2/`
 * (the same `usageStats`), grouped by outcome and category.
 */

/** The periods offered, with the bucket width each is drawn in. */
const PERIODS: Record<string, { label: string; interval: string }> = {
  "24h": { label: "Last 24 hours", interval: "1h" },
  "7d": { label: "Last 7 days", interval: "6h" },
  "30d": { label: "Last 30 days", interval: "1d" },
};

/** Sentry's stats categories (DataCategory), each with the stored categories it sums. */
const CATEGORIES: { key: string; label: string; stored: string[]; always: boolean }[] = [
  { key: "error", label: "Errors", stored: ["default", "error", "security"], always: true },
  { key: "transaction", label: "Transactions", stored: ["transaction"], always: true },
  { key: "attachment", label: "Attachments (bytes)", stored: ["attachment"], always: true },
  { key: "session", label: "Sessions", stored: ["session"], always: true },
  { key: "span", label: "Spans", stored: ["span"], always: false },
  { key: "replay", label: "Replays", stored: ["replay"], always: false },
  { key: "profile", label: "Profiles", stored: ["profile"], always: false },
  { key: "monitor", label: "Cron check-ins", stored: ["monitor"], always: false },
  { key: "feedback", label: "User feedback", stored: ["feedback"], always: false },
  { key: "log_item", label: "Logs", stored: ["log_item"], always: false },
];

/** The columns of the totals table: accepted, then the dropped outcomes Sentry's page shows. */
const OUTCOME_COLUMNS: { label: string; outcomes: string[] }[] = [
  { label: "Accepted", outcomes: ["accepted"] },
  { label: "Filtered", outcomes: ["filtered", "filtered_sampling"] },
  { label: "Rate limited", outcomes: ["rate_limited"] },
  { label: "Invalid", outcomes: ["invalid", "abuse", "cardinality_limited"] },
  { label: "Client discard", outcomes: ["client_discard"] },
];

type CategoryUsage = {
  key: string;
  label: string;
  accepted: number[];
  dropped: number[];
  totals: Map<string, number>;
};

/** Sums the groups (by outcome and category) into Sentry's stats categories; categories Sluice does not name are listed as they are stored. */
function byCategory(stats: UsageStats): CategoryUsage[] {
  const buckets = stats.intervals.length;
  const views = new Map<string, CategoryUsage>();
  const viewOf = (category: string): CategoryUsage => {
    const known = CATEGORIES.find((c) => c.stored.includes(category));
    const key = known?.key ?? category;
    let view = views.get(key);
    if (!view) {
      view = {
        key,
        label: known?.label ?? category,
        accepted: new Array(buckets).fill(0),
        dropped: new Array(buckets).fill(0),
        totals: new Map(),
      };
      views.set(key, view);
    }
    return view;
  };
  for (const c of CATEGORIES) if (c.always) viewOf(c.stored[0] as string);
  for (const group of stats.groups) {
    const category = String(group.by.category);
    if (category === "internal") continue;
    const outcome = String(group.by.outcome);
    const view = viewOf(category);
    const series = group.series["sum(quantity)"] ?? [];
    const into = outcome === "accepted" ? view.accepted : view.dropped;
    series.forEach((n, i) => {
      into[i] = (into[i] ?? 0) + n;
    });
    view.totals.set(
      outcome,
      (view.totals.get(outcome) ?? 0) + (group.totals["sum(quantity)"] ?? 0),
    );
  }
  return [...views.values()];
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Stacked bars, one per interval (accepted below, dropped above), as
 * inline SVG: no script, no external file, nothing the CSP forbids. Its
 * accessible name gives the totals; each bar's `<title>` its interval's.
 */
function UsageChart({
  usage,
  intervals,
  periodLabel,
}: {
  usage: CategoryUsage;
  intervals: string[];
  periodLabel: string;
}) {
  const width = 720;
  const height = 150;
  const left = 52;
  const bottom = 20;
  const plotH = height - bottom - 6;
  const n = Math.max(1, intervals.length);
  const slot = (width - left - 4) / n;
  const max = Math.max(1, ...usage.accepted.map((a, i) => a + (usage.dropped[i] ?? 0)));
  const y = (v: number) => (v / max) * plotH;
  const accepted = sum(usage.accepted);
  const dropped = sum(usage.dropped);
  const first = intervals[0];
  const last = intervals[intervals.length - 1];
  return (
    <svg
      class="usage-chart"
      role="img"
      aria-label={`${usage.label}: ${formatCount(accepted)} accepted, ${formatCount(dropped)} dropped, ${periodLabel.toLowerCase()}`}
      viewBox={`0 0 ${width} ${height}`}
      width="100%"
      font-family="system-ui, sans-serif"
    >
      <line x1={left} y1={height - bottom} x2={width} y2={height - bottom} stroke="#bdb9c9" />
      <line
        x1={left}
        y1={height - bottom - plotH}
        x2={width}
        y2={height - bottom - plotH}
        stroke="#eceaf1"
      />
      <text
        x={left - 6}
        y={height - bottom - plotH + 4}
        text-anchor="end"
        font-size="11"
        fill="#5f5b6b"
      >
        {formatCount(max)}
      </text>
      <text x={left - 6} y={height - bottom} text-anchor="end" font-size="11" fill="#5f5b6b">
        0
      </text>
      {intervals.map((start, i) => {
        const a = usage.accepted[i] ?? 0;
        const d = usage.dropped[i] ?? 0;
        const x = left + i * slot + Math.min(1, slot * 0.1);
        const w = Math.max(1, slot - Math.min(2, slot * 0.2));
        const ha = y(a);
        const hd = y(d);
        return (
          <g>
            <title>{`${exactTime(new Date(start))}: ${formatCount(a)} accepted, ${formatCount(d)} dropped`}</title>
            <rect
              x={x.toFixed(1)}
              y={(height - bottom - plotH).toFixed(1)}
              width={w.toFixed(1)}
              height={plotH}
              fill="transparent"
            />
            {a > 0 ? (
              <rect
                x={x.toFixed(1)}
                y={(height - bottom - ha).toFixed(1)}
                width={w.toFixed(1)}
                height={ha.toFixed(1)}
                fill="#8a74e8"
              />
            ) : null}
            {d > 0 ? (
              <rect
                x={x.toFixed(1)}
                y={(height - bottom - ha - hd).toFixed(1)}
                width={w.toFixed(1)}
                height={hd.toFixed(1)}
                fill="#e0863a"
              />
            ) : null}
          </g>
        );
      })}
      {first ? (
        <text x={left} y={height - 5} font-size="11" fill="#5f5b6b">
          {exactTime(new Date(first)).slice(0, 16)}
        </text>
      ) : null}
      {last ? (
        <text x={width} y={height - 5} text-anchor="end" font-size="11" fill="#5f5b6b">
          {exactTime(new Date(last)).slice(0, 16)}
        </text>
      ) : null}
    </svg>
  );
}

async function usagePage(c: Context<WebEnv>) {
  const { org, access, projects } = await orgPage(c);
  requirePageScope(access, "org:read");
  const viewer = c.get("viewer");
  const periodKey = c.req.query("statsPeriod") ?? "24h";
  const period = PERIODS[periodKey];
  if (!period) throw new PageError(400, "The period is one of 24h, 7d or 30d.");
  const chosen = c.req.query("project") ?? "";
  const project =
    chosen === "" || chosen === "-1" ? null : projects.find((p) => String(p.id) === chosen);
  if (project === undefined) {
    throw new PageError(
      404,
      "There is no such project in this organization, or you cannot see it.",
    );
  }
  const stats = await usageStats(c.get("services").db.pool, {
    projectIds: project ? [project.id] : projects.map((p) => p.id),
    window: usageWindow({ interval: period.interval, statsPeriod: periodKey }, Date.now()),
    groupBy: ["outcome", "category"],
    field: "sum(quantity)",
    categories: null,
    outcomes: null,
    reasons: null,
  });
  const usage = byCategory(stats);
  return render(
    c,
    <Layout title={`Usage — ${org.name}`} viewer={viewer} org={org} section="stats">
      <h1>Usage stats</h1>
      <form method="get" action={`/organizations/${org.slug}/stats/`} class="toolbar">
        <span class="field">
          <label for="statsPeriod">Period</label>
          <select id="statsPeriod" name="statsPeriod">
            {Object.entries(PERIODS).map(([k, p]) => (
              <option value={k} selected={k === periodKey}>
                {p.label}
              </option>
            ))}
          </select>
        </span>
        <span class="field">
          <label for="project">Project</label>
          <select id="project" name="project">
            <option value="">All projects you can see</option>
            {projects.map((p) => (
              <option value={String(p.id)} selected={p.id === project?.id}>
                {p.slug}
              </option>
            ))}
          </select>
        </span>
        <button type="submit">Show usage</button>
      </form>
      <p class="muted">
        {`${period.label}, ${project ? `project ${project.slug}` : "all projects you can see"}: from ${exactTime(new Date(stats.start))} to ${exactTime(new Date(stats.end))}.`}
      </p>
      <table aria-label="Usage totals">
        <thead>
          <tr>
            <th scope="col">Category</th>
            {OUTCOME_COLUMNS.map((col) => (
              <th scope="col" class="num">
                {col.label}
              </th>
            ))}
            <th scope="col" class="num">
              Total dropped
            </th>
          </tr>
        </thead>
        <tbody>
          {usage.map((u) => (
            <tr>
              <th scope="row">{u.label}</th>
              {OUTCOME_COLUMNS.map((col) => (
                <td class="num">
                  {formatCount(sum(col.outcomes.map((o) => u.totals.get(o) ?? 0)))}
                </td>
              ))}
              <td class="num">{formatCount(sum(u.dropped))}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="legend muted" aria-hidden="true">
        <span class="swatch accepted" /> accepted <span class="swatch dropped" /> dropped
      </p>
      {usage.map((u) => (
        <section class="panel" aria-labelledby={`usage-${u.key}`}>
          <h2 id={`usage-${u.key}`}>{u.label}</h2>
          {sum(u.accepted) + sum(u.dropped) === 0 ? (
            <p class="muted">{`No ${u.label.toLowerCase()} in this period.`}</p>
          ) : (
            <UsageChart usage={u} intervals={stats.intervals} periodLabel={period.label} />
          )}
        </section>
      ))}
    </Layout>,
  );
}

/** Registers the usage page. */
export function registerUsagePage(web: Hono<WebEnv>): void {
  web.get("/organizations/:org/stats", (c) => usagePage(c));
}
