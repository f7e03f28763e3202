import { HASH_EVENT_COUNT_CAP, listIssueHashes } from "@sluice/db";
import type { Context, Hono } from "hono";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { mergeIssuesInScope, unmergeIssueHashes } from "../issue-merging.ts";
import { CsrfField, formatCount, RelativeTime } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { issuePage, type OrgPage, requirePageScope } from "./web-lookups.ts";

/**
 * Merge and unmerge on the web (Sentry's issue stream "Merge" action and
 * the issue's "Merged issues" tab, static/app/views/issueDetails/types.ts
 * `TabPaths`: `merged/`), through the same shared functions as
 * `PUT …/issues/?id=…` `{"merge": 1}` and `PUT …/issues/{id}/hashes/`.
 */

/** Hashes the merged page lists; an issue rarely owns more than a handful. */
const MAX_HASHES = 100;
/** A group hash as a form names it: Sluice's are 32 hex digits; bounded either way. */
const HASH = /^[0-9A-Za-z_-]{1,64}$/;

/**
 * The issue list's "Merge selected" (a POST of the bulk form): merges the
 * selected live issues the viewer can see (others are ignored, as the API
 * ignores them) into Sentry's pick of parent and shows the parent. A 400
 * page for fewer than two issues or issues of several projects.
 */
export async function mergeSelectedIssues(c: Context<WebEnv>, page: OrgPage, ids: number[]) {
  requirePageScope(page.access, "event:write");
  const result = await mergeIssuesInScope(
    c.get("services").db,
    { organizationId: page.org.id, projectIds: page.projects.map((p) => p.id) },
    ids,
  );
  if (result === "cross-project") {
    throw new PageError(400, "Merging across multiple projects is not supported.");
  }
  if (!result) throw new PageError(400, "Select two or more issues of one project to merge.");
  return c.redirect(
    `/organizations/${page.org.slug}/issues/${result.parentId}/?merged=${result.childIds.length}`,
    303,
  );
}

/** Registers the issue's merged hashes page and its unmerge action. */
export function registerIssueMergePages(web: Hono<WebEnv>): void {
  web.get("/organizations/:org/issues/:issueId{[0-9]+}/merged", (c) => mergedPage(c));

  web.post(
    "/organizations/:org/issues/:issueId{[0-9]+}/merged/unmerge",
    requireCsrf(),
    async (c) => {
      const ctx = await issuePage(c);
      requirePageScope(ctx.access, "event:write");
      const body = await c.req.parseBody({ all: true });
      const hashes = ([] as unknown[]).concat(body.hash ?? []).map(String);
      if (hashes.length === 0 || hashes.length > MAX_HASHES || !hashes.every((h) => HASH.test(h))) {
        throw new PageError(400, "Choose a fingerprint hash to unmerge.");
      }
      const result = await unmergeIssueHashes(c.get("services").db, ctx.issue, hashes);
      if (result === "no-such-hash") {
        throw new PageError(409, "This issue no longer has that hash: it was unmerged already.");
      }
      if (result === "issue-merged") {
        throw new PageError(409, "The issue was merged into another meanwhile: reload its page.");
      }
      return c.redirect(
        `/organizations/${ctx.org.slug}/issues/${ctx.issue.id}/merged/?unmerged=${result.issueId}`,
        303,
      );
    },
  );
}

async function mergedPage(c: Context<WebEnv>) {
  const ctx = await issuePage(c);
  const { org, issue } = ctx;
  const viewer = c.get("viewer");
  const hashes = await listIssueHashes(c.get("services").db.pool, issue.id, MAX_HASHES, 0);
  const canWrite = ctx.access.scopes.has("event:write") && viewer !== null;
  const here = `/organizations/${org.slug}/issues/${issue.id}`;
  const unmerged = c.req.query("unmerged");
  const newIssue = unmerged && /^\d{1,16}$/.test(unmerged) ? unmerged : null;
  const count = (n: number) =>
    n >= HASH_EVENT_COUNT_CAP ? `${formatCount(HASH_EVENT_COUNT_CAP)}+` : formatCount(n);
  return render(
    c,
    <Layout title={`Merged issues — ${issue.title}`} viewer={viewer} org={org} section="issues">
      <p>
        <a href={`${here}/`}>{`Back to ${issue.title}`}</a>
      </p>
      <h1>Merged issues</h1>
      {newIssue ? (
        <p class="notice" role="status">
          {"Unmerged into a new issue: "}
          <a href={`/organizations/${org.slug}/issues/${newIssue}/`}>the unmerged issue</a>
          {". Later events with that fingerprint group there."}
        </p>
      ) : null}
      <p>
        {`Each fingerprint hash below groups events into ${issue.title}; merging issues brings their hashes here. Unmerge moves a hash and its events to a new issue.`}
      </p>
      {hashes.length === 0 ? (
        <p class="panel empty">This issue has no hashes.</p>
      ) : (
        <table aria-label="Fingerprint hashes">
          <thead>
            <tr>
              <th scope="col">Hash</th>
              <th scope="col" class="num">
                Events
              </th>
              <th scope="col">Latest event</th>
              {canWrite ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {hashes.map((h) => (
              <tr>
                <td class="mono">{h.hash}</td>
                <td class="num">{count(h.eventCount)}</td>
                <td>
                  {h.latestEvent ? (
                    <a href={`${here}/events/${h.latestEvent.eventId}/`}>
                      <RelativeTime date={h.latestEvent.receivedAt} />
                    </a>
                  ) : (
                    <span class="muted">no stored event</span>
                  )}
                </td>
                {canWrite && viewer ? (
                  <td>
                    {hashes.length > 1 ? (
                      <form method="post" action={`${here}/merged/unmerge/`} class="inline">
                        <CsrfField token={viewer.csrfToken} />
                        <input type="hidden" name="hash" value={h.hash} />
                        <button type="submit">{`Unmerge ${h.hash}`}</button>
                      </form>
                    ) : (
                      <span class="muted">its only hash</span>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>,
  );
}

/** The issue page's link to its merged hashes, and the notice after a merge (`?merged=<n>`). */
export function MergedIssuesLink({ here, merged }: { here: string; merged: string | undefined }) {
  const n = merged && /^\d{1,4}$/.test(merged) ? Number(merged) : 0;
  return (
    <>
      {n > 0 ? (
        <p class="notice" role="status">
          {`Merged ${n} issue${n === 1 ? "" : "s"} into this one: their events and later events group here.`}
        </p>
      ) : null}
      <p>
        <a href={`${here}/merged/`}>Merged issues</a>
      </p>
    </>
  );
}
