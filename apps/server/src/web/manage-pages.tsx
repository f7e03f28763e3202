import { type FleetNode, LAST_RELEASE_WITHOUT_REGISTRY } from "@sluice/db";
import type { Context, Hono } from "hono";
import { isInstanceAdmin, type Viewer } from "../accounts/access.ts";
import { fleetStatus } from "../fleet-nodes.ts";
import { exactTime, RelativeTime } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";

/**
 * The viewer when they administer the instance (a superuser); anyone else
 * gets the 404 of an address with no page, so the admin area does not
 * reveal that it exists (as Sentry's `/manage/` is for superusers only).
 */
function instanceAdmin(c: Context<WebEnv>): Viewer {
  const viewer = c.get("viewer");
  if (!viewer || !isInstanceAdmin(viewer.caller))
    throw new PageError(404, "There is no page at this address.");
  return viewer;
}

/** Seconds since `date`, as `sluice fleet` prints a heartbeat, with the exact time on hover. */
function SecondsAgo({ date, now }: { date: Date; now: number }) {
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  return (
    <time datetime={date.toISOString()} title={exactTime(date)}>
      {`${seconds} s ago`}
    </time>
  );
}

function NodeRow({ node, self, now }: { node: FleetNode; self: boolean; now: number }) {
  return (
    <tr>
      <th scope="row">
        <code>{node.id}</code>
        {self ? <span class="muted"> (served this page)</span> : null}
      </th>
      <td>{node.host}</td>
      <td class="nowrap">{node.release}</td>
      <td>{node.commit ? <code title={node.commit}>{node.commit.slice(0, 12)}</code> : ""}</td>
      <td>{node.registered ? node.roles.join(", ") : "(unregistered)"}</td>
      <td>{node.registered ? String(node.schemaVersion) : "?"}</td>
      <td>{node.ready ? "yes" : "no"}</td>
      <td>{node.registered ? <RelativeTime date={node.startedAt} /> : ""}</td>
      <td>
        <SecondsAgo date={node.heartbeatAt} now={now} />
      </td>
    </tr>
  );
}

/**
 * The instance's admin pages under Sentry's `/manage/` (getsentry/sentry
 * `static/app/views/admin/adminLayout.tsx`; its Relays are at
 * `/manage/relays/`): `/manage/fleet/`, the live nodes of the registry
 * (docs/architecture.md §3.14) as `sluice fleet` and
 * `GET /api/0/internal/fleet/` list them, with the database's schema
 * version and floor. Superusers only; others get a 404.
 */
export function registerManagePages(web: Hono<WebEnv>): void {
  web.get("/manage", (c) => {
    instanceAdmin(c);
    return c.redirect("/manage/fleet/", 302);
  });

  web.get("/manage/fleet", async (c) => {
    const viewer = instanceAdmin(c);
    const services = c.get("services");
    const { nodes, schemaVersion, floor } = await fleetStatus(services);
    const now = Date.now();
    const unregistered = nodes.some((n) => !n.registered);
    return render(
      c,
      <Layout title="Fleet" viewer={viewer} section="manage">
        <h1>Fleet</h1>
        <dl class="facts panel spaced" aria-label="Schema">
          <dt>Schema version</dt>
          <dd>{String(schemaVersion)}</dd>
          <dt>Oldest release the schema supports</dt>
          <dd>
            {floor
              ? `${floor.oldestRelease} (migration ${floor.migration}: ${floor.reason})`
              : "every release (no migration has removed anything yet)"}
          </dd>
          <dt>Live nodes</dt>
          <dd>{String(nodes.length)}</dd>
        </dl>
        {nodes.length === 0 ? (
          <p class="panel empty">No live nodes.</p>
        ) : (
          <table aria-label="Live nodes">
            <thead>
              <tr>
                <th scope="col">Node</th>
                <th scope="col">Host</th>
                <th scope="col">Release</th>
                <th scope="col">Commit</th>
                <th scope="col">Roles</th>
                <th scope="col">Schema needed</th>
                <th scope="col">Ready</th>
                <th scope="col">Started</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {nodes.map((node) => (
                <NodeRow node={node} self={node.id === services.instanceId} now={now} />
              ))}
            </tbody>
          </table>
        )}
        {unregistered ? (
          <p class="muted">
            {`Nodes of release ${LAST_RELEASE_WITHOUT_REGISTRY} and older do not register: they are seen by their database connections, one row per host, for ${Math.round(services.config.fleet.unregisteredAgeOutMs / 1000)} s after the last one.`}
          </p>
        ) : null}
        <p class="muted">
          The same list: <code>sluice fleet</code> and <code>GET /api/0/internal/fleet/</code>.
        </p>
      </Layout>,
    );
  });
}
