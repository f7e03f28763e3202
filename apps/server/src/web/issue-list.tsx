import {
  findIssue,
  hourlyEventCounts,
  type IssueCursor,
  type IssueListRow,
  type IssueSort,
  type IssueStatus,
  isStorableText,
  listIssuePage,
  listProjectEnvironments,
  setIssueStatus,
} from "@sluice/db";
import { MAX_SEARCH_LENGTH as MAX_QUERY_LENGTH, parseIssueSearch } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { CsrfField, formatCount, Level, RelativeTime, Sparkline } from "./components.tsx";
import { mergeSelectedIssues } from "./issue-merge-pages.tsx";
import { Layout } from "./layout.tsx";
import { EmptyProject, projectDsns } from "./project-setup.tsx";
import { render } from "./render.ts";
import { safeNext } from "./safe-next.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { orgPage, requirePageScope } from "./web-lookups.ts";

/** Issues per page of the list. */
const PAGE_SIZE = 25;
/** Environments offered by the selector. */
const MAX_ENVIRONMENTS = 50;
/** Issues one bulk action may change (a page's worth, with room). */
const MAX_BULK = 100;

const SORTS: Record<IssueSort, string> = {
  date: "Last seen",
  new: "First seen",
  freq: "Events",
  user: "Users",
};

/** Sentry's status actions (`PUT /issues/{id}/` `status`), as the pages' forms post them. */
export const STATUS_ACTIONS: Record<string, IssueStatus> = {
  resolved: "resolved",
  resolvedInNextRelease: "resolved",
  ignored: "ignored",
  unresolved: "unresolved",
};

/** `n:` or `p:` (next or previous page), the sort value base64url, the issue id. */
function encodeCursor(direction: "next" | "previous", row: IssueListRow): string {
  return `${direction === "next" ? "n" : "p"}:${Buffer.from(row.sortValue).toString("base64url")}:${row.id}`;
}

const SORT_VALUE = {
  time: /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/,
  count: /^\d{1,19}$/,
};

function decodeCursor(cursor: string | undefined, sort: IssueSort): IssueCursor | null {
  if (!cursor) return null;
  const match = /^([np]):([A-Za-z0-9_-]{1,64}):(\d{1,16})$/.exec(cursor);
  const value = match ? Buffer.from(match[2] as string, "base64url").toString() : "";
  const shape = sort === "date" || sort === "new" ? SORT_VALUE.time : SORT_VALUE.count;
  if (!match || !shape.test(value))
    throw new PageError(400, "That page link is broken: start from the first page.");
  return { direction: match[1] === "n" ? "next" : "previous", value, id: Number(match[3]) };
}

/** The issue list and its bulk actions. */
export function registerIssueListPages(web: Hono<WebEnv>): void {
  web.get("/organizations/:org/issues", (c) => issueList(c));
  web.post("/organizations/:org/issues/bulk", requireCsrf(), async (c) => {
    const { org, access, projects } = await orgPage(c);
    requirePageScope(access, "event:write");
    const body = await c.req.parseBody({ all: true });
    // Resolving by release is per project (its latest release): the issue page does it.
    const status =
      body.status === "resolvedInNextRelease"
        ? undefined
        : STATUS_ACTIONS[String(body.status ?? "")];
    if (!status && body.merge !== "1") throw new PageError(400, "Choose Resolve, Ignore or Merge.");
    const ids = ([] as unknown[]).concat(body.issue ?? []).map(String);
    if (ids.length === 0 || ids.length > MAX_BULK || !ids.every((id) => /^\d{1,16}$/.test(id))) {
      throw new PageError(400, `Select between 1 and ${MAX_BULK} issues first.`);
    }
    if (!status) return mergeSelectedIssues(c, { org, access, projects }, ids.map(Number));
    const { orm } = c.get("services").db;
    const visible = new Set(projects.map((p) => p.id));
    for (const id of new Set(ids.map(Number))) {
      const issue = await findIssue(orm, id);
      if (issue && visible.has(issue.projectId)) await setIssueStatus(orm, id, status);
    }
    return c.redirect(nextPath(body.next, `/organizations/${c.req.param("org")}/issues/`), 303);
  });
}

/** The form's `next` when it is a path on this site (auth-routes.ts `safeNext`), else `fallback`. */
export function nextPath(next: unknown, fallback: string): string {
  return (typeof next === "string" ? safeNext(next) : null) ?? fallback;
}

async function issueList(c: Context<WebEnv>) {
  const services = c.get("services");
  const { org, projects, access } = await orgPage(c);
  const canWrite = access.scopes.has("event:write");
  const url = new URL(c.req.url);
  const rawQuery = c.req.query("query");
  if (rawQuery !== undefined && rawQuery.length > MAX_QUERY_LENGTH) {
    throw new PageError(400, `A search is at most ${MAX_QUERY_LENGTH} characters.`);
  }
  const rawEnvironment = c.req.query("environment") ?? "";
  if (!isStorableText(`${rawQuery ?? ""}${rawEnvironment}`) || rawEnvironment.length > 200) {
    throw new PageError(400, "That search has characters or a length Sluice cannot search for.");
  }
  const sortParam = c.req.query("sort") ?? "date";
  const sort: IssueSort = sortParam in SORTS ? (sortParam as IssueSort) : "date";
  const cursor = decodeCursor(c.req.query("cursor"), sort);
  const wanted = (c.req.queries("project") ?? []).filter((p) => p !== "" && p !== "-1");
  const selected =
    wanted.length === 0 ? projects : projects.filter((p) => wanted.includes(String(p.id)));
  if (wanted.length > 0 && selected.length === 0) {
    throw new PageError(
      404,
      "There is no such project in this organization, or you cannot see it.",
    );
  }
  const environment = rawEnvironment || null;
  const search = parseIssueSearch(rawQuery);
  // The selector narrows like an `environment:` term (Sentry's environment filter).
  if (environment) search.tags.push({ key: "environment", values: [environment], negated: false });
  const page =
    search.errors.length > 0
      ? { rows: [], hasNext: false, hasPrevious: false }
      : await listIssuePage(services.db.pool, {
          ...search,
          projectIds: selected.map((p) => p.id),
          sort,
          cursor,
          limit: PAGE_SIZE,
        });
  const now = new Date();
  const [counts, environments] = await Promise.all([
    hourlyEventCounts(
      services.db.pool,
      page.rows.map((r) => r.id),
      now,
    ),
    listProjectEnvironments(
      services.db.pool,
      selected.map((p) => p.id),
      MAX_ENVIRONMENTS,
    ),
  ]);
  const projectOf = new Map(projects.map((p) => [p.id, p]));
  const pageUrl = (cursorValue: string) => {
    const next = new URL(url.pathname + url.search, "http://x");
    next.searchParams.set("cursor", cursorValue);
    return `${next.pathname}${next.search}`;
  };
  const firstRow = page.rows[0];
  const lastRow = page.rows.at(-1);
  // An empty project with the default search: show how to send it errors.
  const onlyProject = selected.length === 1 ? selected[0] : null;
  const showSetup = page.rows.length === 0 && rawQuery === undefined && !cursor && onlyProject;
  const setupDsn =
    showSetup && onlyProject
      ? ((await projectDsns(services, onlyProject)).find((d) => d.key.isActive)?.dsn ?? null)
      : null;
  const viewer = c.get("viewer");
  return render(
    c,
    <Layout title={`Issues — ${org.name}`} viewer={viewer} org={org} section="issues">
      <h1>Issues</h1>
      <search aria-label="Issues">
        <form method="get" action={url.pathname} class="toolbar">
          <div class="field">
            <label for="project">Project</label>
            <select id="project" name="project" data-autosubmit="">
              <option value="">All projects</option>
              {projects.map((p) => (
                <option value={String(p.id)} selected={wanted.includes(String(p.id))}>
                  {p.slug}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="environment">Environment</label>
            <select id="environment" name="environment" data-autosubmit="">
              <option value="">All environments</option>
              {environments.map((e) => (
                <option value={e} selected={e === environment}>
                  {e}
                </option>
              ))}
            </select>
          </div>
          <div class="field grow">
            <label for="query">Search</label>
            <input
              type="search"
              id="query"
              name="query"
              value={rawQuery ?? "is:unresolved"}
              maxlength={MAX_QUERY_LENGTH}
              aria-describedby="search-help"
            />
          </div>
          <div class="field">
            <label for="sort">Sort by</label>
            <select id="sort" name="sort" data-autosubmit="">
              {Object.entries(SORTS).map(([value, label]) => (
                <option value={value} selected={value === sort}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" class="primary">
            Apply
          </button>
        </form>
      </search>
      <p id="search-help" class="muted">
        Sentry's syntax: <code>is:unresolved</code>, <code>is:resolved</code>,{" "}
        <code>is:ignored</code>, <code>level:error</code>, <code>release:1.0</code>,{" "}
        <code>user.email:a@b.c</code>, <code>environment:production</code>, any tag as{" "}
        <code>key:value</code> (<code>browser.name:Chrome</code>, <code>server_name:web-1</code>),{" "}
        <code>has:key</code>; <code>!</code> negates; other words search titles and culprits.{" "}
        <code>release:</code> matches an issue's first or last release.
      </p>
      {search.errors.map((e) => (
        <p class="notice error" role="alert">
          {e}
        </p>
      ))}
      {search.notApplied.length > 0 ? (
        <p class="notice" role="status">
          {`Not applied (Sluice cannot answer these yet): ${search.notApplied.join(", ")}`}
        </p>
      ) : null}
      {projects.length === 0 && access.projectIds !== "all" ? (
        <section class="panel empty">
          <h2>No projects you can see</h2>
          <p>Ask an owner or manager of this organization to add you to a team with a project.</p>
        </section>
      ) : projects.length === 0 ? (
        <section class="panel empty">
          <h2>No projects yet</h2>
          <p>
            <a href={`/settings/${org.slug}/projects/`}>Create a project</a> to get a DSN, then send
            it errors.
          </p>
        </section>
      ) : showSetup && onlyProject ? (
        <EmptyProject project={onlyProject} dsn={setupDsn} />
      ) : page.rows.length === 0 ? (
        <section class="panel empty">
          <h2>No issues match</h2>
          <p>
            Try another search, or{" "}
            <a href={`${url.pathname}?query=`}>show issues of every status</a>.
          </p>
        </section>
      ) : (
        <form method="post" action={`/organizations/${org.slug}/issues/bulk/`}>
          {viewer ? <CsrfField token={viewer.csrfToken} /> : null}
          <input type="hidden" name="next" value={`${url.pathname}${url.search}`} />
          {canWrite ? (
            <div class="actions">
              <button type="submit" name="status" value="resolved">
                Resolve selected
              </button>
              <button type="submit" name="status" value="ignored">
                Ignore selected
              </button>
              <button type="submit" name="merge" value="1">
                Merge selected
              </button>
            </div>
          ) : null}
          <table aria-label="Issues">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    data-select-all=""
                    aria-label="Select all issues on this page"
                  />
                </th>
                <th scope="col">Issue</th>
                <th scope="col">Level</th>
                <th scope="col">Last 24 hours</th>
                <th scope="col" class="num">
                  Events
                </th>
                <th scope="col" class="num">
                  Users
                </th>
                <th scope="col">First seen</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {page.rows.map((issue) => {
                const project = projectOf.get(issue.projectId);
                return (
                  <tr>
                    <td>
                      <input
                        type="checkbox"
                        name="issue"
                        value={String(issue.id)}
                        aria-label={`Select ${issue.title}`}
                      />
                    </td>
                    <td>
                      <a
                        class="issue-title"
                        href={`/organizations/${org.slug}/issues/${issue.id}/`}
                      >
                        {issue.title}
                      </a>
                      <div class="culprit">{issue.culprit}</div>
                      <div class="muted">
                        <span class="mono">{`${(project?.slug ?? "").toUpperCase()}-${issue.shortId.toString(36).toUpperCase()}`}</span>
                        {issue.status !== "unresolved" ? (
                          <span
                            class={`status status-${issue.status}`}
                          >{` · ${issue.status}`}</span>
                        ) : null}
                      </div>
                    </td>
                    <td>
                      <Level level={issue.level} />
                    </td>
                    <td>
                      <Sparkline counts={counts.get(issue.id) ?? []} />
                    </td>
                    <td class="num">{formatCount(issue.timesSeen)}</td>
                    <td class="num">{formatCount(issue.userCount)}</td>
                    <td>
                      <RelativeTime date={issue.firstSeen} />
                    </td>
                    <td>
                      <RelativeTime date={issue.lastSeen} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </form>
      )}
      {page.hasPrevious || page.hasNext ? (
        <nav class="pager" aria-label="Pages">
          {page.hasPrevious && firstRow ? (
            <a href={pageUrl(encodeCursor("previous", firstRow))}>Previous page</a>
          ) : null}
          {page.hasNext && lastRow ? (
            <a href={pageUrl(encodeCursor("next", lastRow))}>Next page</a>
          ) : null}
        </nav>
      ) : null}
    </Layout>,
    search.errors.length > 0 ? 400 : 200,
  );
}
