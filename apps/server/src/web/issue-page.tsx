import {
  type EventPosition,
  findEvent,
  findIssueEvent,
  type Issue,
  listLatestIssueEvents,
  type ProjectWithOrganization,
  resolutionOfDetails,
  type StoredEventRow,
  setIssueStatus,
  statusDetailsOf,
  summarizeIssueTags,
} from "@sluice/db";
import { normalizeEventId } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { CsrfField, formatCount, Level, RelativeTime, ShareBar } from "./components.tsx";
import { EventView, eventTags, readEvent } from "./event-view.tsx";
import { nextPath, STATUS_ACTIONS } from "./issue-list.tsx";
import { MergedIssuesLink } from "./issue-merge-pages.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { issuePage, requirePageScope } from "./web-lookups.ts";

/** Events read for the tag summaries: the latest ones, so the page costs the same for any issue. */
const TAG_SAMPLE = 100;
/** Tag keys and values per key the summaries show. */
const MAX_TAG_KEYS = 12;
const MAX_TAG_VALUES = 3;
/** Events per page of an issue's event list. */
const EVENTS_PAGE = 50;

type IssueContext = Awaited<ReturnType<typeof issuePage>>;

const base = (org: string, issue: Issue) => `/organizations/${org}/issues/${issue.id}`;

function shortId(project: ProjectWithOrganization, issue: Issue): string {
  return `${project.slug.toUpperCase()}-${issue.shortId.toString(36).toUpperCase()}`;
}

/** The issue page, its events list, one event, an event's raw JSON, and status changes. */
export function registerIssuePages(web: Hono<WebEnv>): void {
  web.get("/organizations/:org/issues/:issueId{[0-9]+}", async (c) => {
    const ctx = await issuePage(c);
    const row = await findIssueEvent(c.get("services").db.pool, ctx.issue.id, { which: "latest" });
    return issueWithEvent(c, ctx, row);
  });

  web.get("/organizations/:org/issues/:issueId{[0-9]+}/events/:eventId", async (c) => {
    const ctx = await issuePage(c);
    return issueWithEvent(c, ctx, await eventParam(c, ctx));
  });

  web.get("/organizations/:org/issues/:issueId{[0-9]+}/events/:eventId/json", async (c) => {
    const ctx = await issuePage(c);
    const row = await eventParam(c, ctx);
    if (!row) throw new PageError(404, "This issue has no such event.");
    c.header("Cache-Control", "no-store");
    return c.json({ ...row.payload, event_id: row.eventId });
  });

  web.get("/organizations/:org/issues/:issueId{[0-9]+}/events", async (c) =>
    eventList(c, await issuePage(c)),
  );

  web.post("/organizations/:org/issues/:issueId{[0-9]+}/status", requireCsrf(), async (c) => {
    const ctx = await issuePage(c);
    requirePageScope(ctx.access, "event:write");
    const body = await c.req.parseBody();
    const status = STATUS_ACTIONS[String(body.status ?? "")];
    if (!status) throw new PageError(400, "Choose Resolve, Ignore or Unresolve.");
    const { orm, pool } = c.get("services").db;
    // Sentry's "Resolve in next release": pins the project's latest release (issue-resolution.ts).
    const found =
      body.status === "resolvedInNextRelease"
        ? await resolutionOfDetails(pool, ctx.project.id, { inNextRelease: true })
        : { resolution: null };
    if ("error" in found) throw new PageError(400, found.error);
    await setIssueStatus(orm, ctx.issue.id, status, found.resolution);
    return c.redirect(nextPath(body.next, `${base(ctx.org.slug, ctx.issue)}/`), 303);
  });
}

/** `:eventId` of the issue: `latest`, `oldest` or an event id (32 hex, dashes allowed). */
async function eventParam(c: Context<WebEnv>, ctx: IssueContext): Promise<StoredEventRow | null> {
  const { pool, orm } = c.get("services").db;
  const which = c.req.param("eventId");
  if (which === "latest" || which === "oldest")
    return findIssueEvent(pool, ctx.issue.id, { which });
  const eventId = normalizeEventId(which ?? "");
  const row = eventId ? await findEvent(orm, ctx.project.id, eventId) : null;
  if (!row || row.issueId !== ctx.issue.id)
    throw new PageError(404, "This issue has no such event.");
  return { ...row, eventId: row.eventId.replaceAll("-", "") };
}

function StatusActions({ ctx, csrf, next }: { ctx: IssueContext; csrf: string; next: string }) {
  const { issue, org } = ctx;
  const button = (status: string, label: string, primary = false) => (
    <button type="submit" name="status" value={status} class={primary ? "primary" : undefined}>
      {label}
    </button>
  );
  return (
    <form
      method="post"
      action={`${base(org.slug, issue)}/status/`}
      class="actions"
      aria-label="Issue actions"
    >
      <CsrfField token={csrf} />
      <input type="hidden" name="next" value={next} />
      {issue.status !== "resolved" ? button("resolved", "Resolve", true) : null}
      {issue.status !== "resolved"
        ? button("resolvedInNextRelease", "Resolve in next release")
        : null}
      {issue.status !== "ignored" ? button("ignored", "Ignore") : null}
      {issue.status !== "unresolved" ? button("unresolved", "Unresolve") : null}
    </form>
  );
}

/** The status as the header names it, with a release resolution (`statusDetailsOf`). */
function statusLabel(issue: Issue): string {
  const details = statusDetailsOf(issue);
  if (details.inNextRelease) return `resolved in the release after ${issue.resolutionRelease}`;
  if (details.inRelease) return `resolved in ${details.inRelease}`;
  return issue.status;
}

function IssueHeader({ ctx, csrf, next }: { ctx: IssueContext; csrf: string; next: string }) {
  const { issue, project } = ctx;
  return (
    <>
      <p class="muted">
        <span class="mono">{shortId(project, issue)}</span>
        {` · ${project.slug} · `}
        <Level level={issue.level} />
        {" · "}
        <span class={`status status-${issue.status}`}>{statusLabel(issue)}</span>
      </p>
      <h1>{issue.title}</h1>
      <p class="culprit">{issue.culprit}</p>
      {ctx.access.scopes.has("event:write") ? (
        <StatusActions ctx={ctx} csrf={csrf} next={next} />
      ) : null}
      <section class="summary-grid" aria-label="Summary">
        <div>
          <div class="k">Events</div>
          <div class="v">{formatCount(issue.timesSeen)}</div>
        </div>
        <div>
          <div class="k">Users</div>
          <div class="v">{formatCount(issue.userCount)}</div>
        </div>
        <div>
          <div class="k">First seen</div>
          <div class="v">
            <RelativeTime date={issue.firstSeen} />
          </div>
          <div class="muted">{issue.firstRelease ? `in ${issue.firstRelease}` : "no release"}</div>
        </div>
        <div>
          <div class="k">Last seen</div>
          <div class="v">
            <RelativeTime date={issue.lastSeen} />
          </div>
          <div class="muted">{issue.lastRelease ? `in ${issue.lastRelease}` : "no release"}</div>
        </div>
      </section>
    </>
  );
}

/** Top values per tag key over the sample, with their share of the sampled events. */
function summarizeTags(rows: StoredEventRow[]) {
  const byKey = new Map<string, Map<string, number>>();
  for (const row of rows) {
    for (const [key, value] of eventTags(readEvent(row))) {
      const values = byKey.get(key) ?? new Map<string, number>();
      values.set(value, (values.get(value) ?? 0) + 1);
      byKey.set(key, values);
    }
  }
  return [...byKey.entries()]
    .map(([key, values]) => ({
      key,
      total: [...values.values()].reduce((a, b) => a + b, 0),
      top: [...values.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, MAX_TAG_VALUES)
        .map(([value, count]) => ({ value, count })),
    }))
    .sort((a, b) => b.total - a.total || a.key.localeCompare(b.key))
    .slice(0, MAX_TAG_KEYS);
}

async function issueWithEvent(c: Context<WebEnv>, ctx: IssueContext, row: StoredEventRow | null) {
  const { pool } = c.get("services").db;
  const viewer = c.get("viewer");
  const { org, issue } = ctx;
  const here = base(org.slug, issue);
  const position = (which: "older" | "newer"): EventPosition | null =>
    row ? { which, projectId: row.projectId, eventId: row.eventId } : null;
  const olderPos = position("older");
  const newerPos = position("newer");
  const [older, newer, indexed] = await Promise.all([
    olderPos ? findIssueEvent(pool, issue.id, olderPos) : null,
    newerPos ? findIssueEvent(pool, issue.id, newerPos) : null,
    summarizeIssueTags(pool, issue.id, MAX_TAG_KEYS, MAX_TAG_VALUES),
  ]);
  // Issues grouped before migration 0010 have no tag rows: sample their latest events.
  const sample =
    indexed.length > 0 ? null : await listLatestIssueEvents(pool, issue.id, TAG_SAMPLE, null);
  const tags = sample ? summarizeTags(sample) : indexed;
  const eventLink = (r: StoredEventRow | null, label: string, rel?: string) =>
    r ? (
      <a class="button" href={`${here}/events/${r.eventId}/`} rel={rel}>
        {label}
      </a>
    ) : (
      <span class="disabled" aria-disabled="true">
        {label}
      </span>
    );
  const next = new URL(c.req.url).pathname;
  return render(
    c,
    <Layout title={issue.title} viewer={viewer} org={org} section="issues">
      <IssueHeader ctx={ctx} csrf={viewer?.csrfToken ?? ""} next={next} />
      <MergedIssuesLink here={here} merged={c.req.query("merged")} />
      <div class="layout-2">
        <div>
          <h2>{row ? "Event" : "No events"}</h2>
          {row ? (
            <>
              <nav class="events" aria-label="Events of this issue">
                {newer || older ? (
                  <a class="button" href={`${here}/events/oldest/`}>
                    Oldest
                  </a>
                ) : (
                  <span class="disabled" aria-disabled="true">
                    Oldest
                  </span>
                )}
                {eventLink(older, "Older", "prev")}
                {eventLink(newer, "Newer", "next")}
                {newer || older ? (
                  <a class="button" href={`${here}/events/latest/`}>
                    Latest
                  </a>
                ) : (
                  <span class="disabled" aria-disabled="true">
                    Latest
                  </span>
                )}
                <a href={`${here}/events/`}>All events</a>
                <a href={`${here}/events/${row.eventId}/json/`}>Raw JSON</a>
              </nav>
              <EventView event={readEvent(row)} />
            </>
          ) : (
            <p>Its events are gone (retention) or not yet stored.</p>
          )}
        </div>
        <aside aria-labelledby="tag-summary-heading">
          <h2 id="tag-summary-heading">Tags</h2>
          <p class="muted">
            {sample
              ? `Over the latest ${formatCount(sample.length)} event${sample.length === 1 ? "" : "s"}.`
              : "Over all events of this issue."}
          </p>
          {tags.map((t) => (
            <section class="tag-summary" aria-label={`Tag ${t.key}`}>
              <h3>{t.key}</h3>
              {t.top.map(({ value, count }) => (
                <div>
                  <div class="share">
                    <span>{value}</span>
                    <span>{`${Math.round((count / Math.max(1, t.total)) * 100)}%`}</span>
                  </div>
                  <ShareBar share={count / Math.max(1, t.total)} />
                </div>
              ))}
            </section>
          ))}
        </aside>
      </div>
    </Layout>,
  );
}

/** Cursor of the events list: the id of the last event shown (32 hex). */
async function eventList(c: Context<WebEnv>, ctx: IssueContext) {
  const { pool } = c.get("services").db;
  const viewer = c.get("viewer");
  const { org, issue, project } = ctx;
  const cursor = c.req.query("cursor");
  const after = cursor ? normalizeEventId(cursor) : null;
  if (cursor && !after)
    throw new PageError(400, "That page link is broken: start from the first page.");
  const rows = await listLatestIssueEvents(
    pool,
    issue.id,
    EVENTS_PAGE + 1,
    after ? { projectId: project.id, eventId: after } : null,
  );
  const shown = rows.slice(0, EVENTS_PAGE);
  const here = base(org.slug, issue);
  const last = shown.at(-1);
  return render(
    c,
    <Layout title={`Events — ${issue.title}`} viewer={viewer} org={org} section="issues">
      <p>
        <a href={`${here}/`}>{`Back to ${shortId(project, issue)}`}</a>
      </p>
      <h1>{`Events of ${issue.title}`}</h1>
      {shown.length === 0 ? (
        <p class="panel empty">No events are stored for this issue.</p>
      ) : (
        <table aria-label="Events">
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">Time</th>
              <th scope="col">Release</th>
              <th scope="col">Environment</th>
              <th scope="col">User</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => {
              const event = readEvent(row);
              return (
                <tr>
                  <td>
                    <a class="mono" href={`${here}/events/${row.eventId}/`}>
                      {row.eventId}
                    </a>
                  </td>
                  <td>
                    <RelativeTime date={event.timestamp} />
                  </td>
                  <td>{event.release ?? ""}</td>
                  <td>{event.environment ?? ""}</td>
                  <td>{event.user?.email ?? event.user?.id ?? event.user?.username ?? ""}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {rows.length > EVENTS_PAGE && last ? (
        <nav class="pager" aria-label="Pages">
          <a href={`${here}/events/?cursor=${last.eventId}`}>Older events</a>
        </nav>
      ) : null}
    </Layout>,
  );
}
