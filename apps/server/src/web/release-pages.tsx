import {
  findRelease,
  isStorableText,
  listDeploys,
  listNewIssuesOfRelease,
  listReleaseArtifacts,
  listReleases,
  type ReleaseSummary,
  summarizeReleases,
} from "@sluice/db";
import type { Hono } from "hono";
import { formatCount, Level, RelativeTime } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { type OrgPage, orgPage } from "./web-lookups.ts";

const PAGE_SIZE = 25;
const MAX_PAGE = 1_000;
/** New issues and files one release page lists. */
const MAX_ROWS = 100;

/** A release the viewer may see: linked to a project they can see (all, for "all" access). */
function visible(page: OrgPage, release: ReleaseSummary): boolean {
  if (page.access.projectIds === "all") return true;
  return release.projects.some((p) => page.access.canSeeProject(p.id));
}

/** The releases list and one release. */
export function registerReleasePages(web: Hono<WebEnv>): void {
  web.get("/organizations/:org/releases", async (c) => {
    const page = await orgPage(c);
    const { org } = page;
    const pageParam = c.req.query("page") ?? "1";
    if (!/^\d{1,4}$/.test(pageParam) || Number(pageParam) < 1 || Number(pageParam) > MAX_PAGE) {
      throw new PageError(400, "That page number is out of range.");
    }
    const n = Number(pageParam);
    const rows = await listReleases(
      c.get("services").db.orm,
      org.id,
      null,
      PAGE_SIZE + 1,
      (n - 1) * PAGE_SIZE,
    );
    const shown = rows.slice(0, PAGE_SIZE).filter((r) => visible(page, r));
    return render(
      c,
      <Layout
        title={`Releases — ${org.name}`}
        viewer={c.get("viewer")}
        org={org}
        section="releases"
      >
        <h1>Releases</h1>
        {shown.length === 0 && n === 1 ? (
          <section class="panel empty">
            <h2>No releases yet</h2>
            <p>
              Set <code>release</code> in the SDK's <code>init</code>, or create one with{" "}
              <code>sentry-cli releases new VERSION</code>; events of a release create it here.
            </p>
          </section>
        ) : (
          <table aria-label="Releases">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Projects</th>
                <th scope="col" class="num">
                  New issues
                </th>
                <th scope="col">Created</th>
                <th scope="col">Last event</th>
                <th scope="col" class="num">
                  Deploys
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr>
                  <td>
                    <a
                      class="mono"
                      href={`/organizations/${org.slug}/releases/${encodeURIComponent(r.version)}/`}
                    >
                      {r.version}
                    </a>
                  </td>
                  <td>
                    {r.projects
                      .filter((p) => page.access.canSeeProject(p.id))
                      .map((p) => p.slug)
                      .join(", ")}
                  </td>
                  <td class="num">{formatCount(r.newGroups)}</td>
                  <td>
                    <RelativeTime date={r.createdAt} />
                  </td>
                  <td>
                    <RelativeTime date={r.lastEvent} />
                  </td>
                  <td class="num">{formatCount(r.deployCount)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <nav class="pager" aria-label="Pages">
          {n > 1 ? <a href={`?page=${n - 1}`}>Previous page</a> : null}
          {rows.length > PAGE_SIZE ? <a href={`?page=${n + 1}`}>Next page</a> : null}
        </nav>
      </Layout>,
    );
  });

  web.get("/organizations/:org/releases/:version", async (c) => {
    const page = await orgPage(c);
    const { org } = page;
    const { orm, pool } = c.get("services").db;
    const version = c.req.param("version");
    const found =
      version.length <= 200 && isStorableText(version)
        ? await findRelease(orm, org.id, version)
        : null;
    const summary = found ? (await summarizeReleases(orm, org.id, [found]))[0] : undefined;
    if (!found || !summary || !visible(page, summary))
      throw new PageError(404, "There is no such release in this organization.");
    const projectIds = summary.projects
      .filter((p) => page.access.canSeeProject(p.id))
      .map((p) => p.id);
    const [newIssues, deploys, files] = await Promise.all([
      listNewIssuesOfRelease(pool, projectIds, found.version, MAX_ROWS),
      listDeploys(orm, found.id),
      listReleaseArtifacts(pool, org.id, found.version, MAX_ROWS),
    ]);
    return render(
      c,
      <Layout
        title={`Release ${found.version}`}
        viewer={c.get("viewer")}
        org={org}
        section="releases"
      >
        <p>
          <a href={`/organizations/${org.slug}/releases/`}>All releases</a>
        </p>
        <h1>{`Release ${found.version}`}</h1>
        <dl class="facts panel" aria-label="Release">
          <dt>Created</dt>
          <dd>
            <RelativeTime date={found.createdAt} />
          </dd>
          <dt>First event</dt>
          <dd>
            <RelativeTime date={summary.firstEvent} />
          </dd>
          <dt>Last event</dt>
          <dd>
            <RelativeTime date={summary.lastEvent} />
          </dd>
          <dt>Projects</dt>
          <dd>
            {summary.projects
              .filter((p) => page.access.canSeeProject(p.id))
              .map((p) => p.slug)
              .join(", ") || "none"}
          </dd>
          {found.ref ? (
            <>
              <dt>Ref</dt>
              <dd class="mono">{found.ref}</dd>
            </>
          ) : null}
        </dl>
        <h2>New issues</h2>
        {newIssues.length === 0 ? (
          <p class="muted">No issue was first seen in this release.</p>
        ) : (
          <table aria-label="New issues">
            <thead>
              <tr>
                <th scope="col">Issue</th>
                <th scope="col">Level</th>
                <th scope="col" class="num">
                  Events
                </th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {newIssues.map((i) => (
                <tr>
                  <td>
                    <a class="issue-title" href={`/organizations/${org.slug}/issues/${i.id}/`}>
                      {i.title}
                    </a>
                    <div class="culprit">{i.culprit}</div>
                  </td>
                  <td>
                    <Level level={i.level} />
                  </td>
                  <td class="num">{formatCount(i.timesSeen)}</td>
                  <td>
                    <RelativeTime date={i.lastSeen} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Deploys</h2>
        {deploys.length === 0 ? (
          <p class="muted">
            No deploys recorded (<code>sentry-cli deploys new -e ENVIRONMENT</code>).
          </p>
        ) : (
          <table aria-label="Deploys">
            <thead>
              <tr>
                <th scope="col">Environment</th>
                <th scope="col">Name</th>
                <th scope="col">Finished</th>
              </tr>
            </thead>
            <tbody>
              {deploys.map((d) => (
                <tr>
                  <td>{d.environment}</td>
                  <td>{d.url ? <a href={d.url}>{d.name ?? d.url}</a> : (d.name ?? "")}</td>
                  <td>
                    <RelativeTime date={d.dateFinished} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Artifact files</h2>
        {files.length === 0 ? (
          <p class="muted">
            No files uploaded for this release (<code>sentry-cli sourcemaps upload</code>).
          </p>
        ) : (
          <table aria-label="Artifact files">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Dist</th>
                <th scope="col">Type</th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Uploaded</th>
              </tr>
            </thead>
            <tbody>
              {files.map((f) => (
                <tr>
                  <td class="mono">{f.url}</td>
                  <td>{f.dist}</td>
                  <td>{`${f.type}${f.fromBundle ? " (bundle)" : ""}`}</td>
                  <td class="num">{`${formatCount(f.size)} B`}</td>
                  <td>
                    <RelativeTime date={f.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Layout>,
    );
  });
}
