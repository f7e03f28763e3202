import {
  createProjectKey,
  ensureProject,
  findMember,
  findUserById,
  listApiTokens,
  listMembers,
  listProjectKeys,
  revokeUserSessions,
  setProjectKeyActive,
  setUserPassword,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie } from "hono/cookie";
import type { OrganizationAccess } from "../accounts/access.ts";
import { changeMemberRole, inviteMember, MembershipError } from "../accounts/members.ts";
import { hashPassword, passwordProblem, verifyPassword } from "../accounts/passwords.ts";
import { isOrganizationRole, ORGANIZATION_ROLES, roleRank } from "../accounts/roles.ts";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { endSession, SESSION_COOKIE } from "../accounts/sessions.ts";
import { CsrfField, Notice, RelativeTime } from "./components.tsx";
import { Layout } from "./layout.tsx";
import {
  ProjectLimitsSection,
  ProjectSettingsLinks,
  readProjectLimits,
} from "./project-settings-pages.tsx";
import { DsnField, projectDsns } from "./project-setup.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { orgPage, requirePageScope } from "./web-lookups.ts";

/** Sentry's project slugs: lowercase letters, digits, `-` and `_`, not only digits, up to 50. */
const SLUG = /^(?!\d+$)[a-z0-9_-]{1,50}$/;
/** Most members the members page lists. */
const MAX_MEMBERS = 1_000;

/** Roles the viewer may hand out: none above their own (Sentry's rule; tokens have no role). */
function grantableRoles(access: OrganizationAccess): string[] {
  return ORGANIZATION_ROLES.filter(
    (r) => access.role === null || roleRank(r) <= roleRank(access.role as string),
  );
}

async function projectsPage(c: Context<WebEnv>, notice?: { message: string; error: boolean }) {
  const { org, projects, access } = await orgPage(c);
  const viewer = c.get("viewer");
  const canCreate = access.scopes.has("project:write");
  return render(
    c,
    <Layout title={`Projects — ${org.name}`} viewer={viewer} org={org} section="projects">
      <h1>Projects</h1>
      <Notice message={notice?.message} error={notice?.error} />
      {projects.length === 0 ? (
        <p class="panel empty">No projects yet: create one to get a DSN.</p>
      ) : (
        <table aria-label="Projects">
          <thead>
            <tr>
              <th scope="col">Project</th>
              <th scope="col">Created</th>
              <th scope="col">Issues</th>
            </tr>
          </thead>
          <tbody>
            {projects.map((p) => (
              <tr>
                <td>
                  <a href={`/settings/${org.slug}/projects/${p.slug}/`}>{p.slug}</a>
                  {p.name !== p.slug ? <span class="muted">{` · ${p.name}`}</span> : null}
                </td>
                <td>
                  <RelativeTime date={p.createdAt} />
                </td>
                <td>
                  <a
                    href={`/organizations/${org.slug}/issues/?project=${p.id}`}
                  >{`Issues of ${p.slug}`}</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canCreate && viewer ? (
        <section class="panel" aria-labelledby="create-heading">
          <h2 id="create-heading">Create a project</h2>
          <form method="post" action={`/settings/${org.slug}/projects/`} class="toolbar">
            <CsrfField token={viewer.csrfToken} />
            <div class="field">
              <label for="slug">Project slug</label>
              <input
                type="text"
                id="slug"
                name="slug"
                required
                pattern="[a-z0-9_\-]{1,50}"
                maxlength={50}
                aria-describedby="slug-help"
              />
            </div>
            <div class="field">
              <label for="name">Name</label>
              <input type="text" id="name" name="name" maxlength={50} />
            </div>
            <button type="submit" class="primary">
              Create project
            </button>
          </form>
          <p id="slug-help" class="muted">
            Lowercase letters, digits, - and _ (as in Sentry); the slug is part of the project's
            URLs.
          </p>
        </section>
      ) : null}
    </Layout>,
    notice?.error ? 400 : 200,
  );
}

async function projectPage(c: Context<WebEnv>) {
  const page = await orgPage(c);
  const { org, access } = page;
  const project = page.projects.find((p) => p.slug === c.req.param("project"));
  if (!project)
    throw new PageError(
      404,
      "There is no such project in this organization, or you cannot see it.",
    );
  const viewer = c.get("viewer");
  const dsns = await projectDsns(c.get("services"), project);
  const limits = await readProjectLimits(c.get("services"), project);
  const canEdit = access.scopes.has("project:write") && viewer;
  return render(
    c,
    <Layout title={`${project.slug} — settings`} viewer={viewer} org={org} section="projects">
      <p>
        <a href={`/settings/${org.slug}/projects/`}>All projects</a>
      </p>
      <h1>{`Project ${project.slug}`}</h1>
      <ProjectSettingsLinks base={`/settings/${org.slug}/projects/${project.slug}`} />
      <h2>Client keys (DSN)</h2>
      {dsns.length === 0 ? <p class="muted">No keys: create one to get a DSN.</p> : null}
      {dsns.map(({ key, dsn }) => (
        <section class="panel" aria-label={`Key ${key.label}`}>
          <h3>{`${key.label}${key.isActive ? "" : " (disabled)"}`}</h3>
          <DsnField id={`dsn-${key.id}`} dsn={dsn} label="DSN" />
          <p class="muted">
            {"Created "}
            <RelativeTime date={key.createdAt} />
          </p>
          {canEdit ? (
            <form
              method="post"
              action={`/settings/${org.slug}/projects/${project.slug}/keys/${key.id}/`}
              class="inline"
            >
              <CsrfField token={viewer.csrfToken} />
              <input type="hidden" name="active" value={key.isActive ? "false" : "true"} />
              <button type="submit">
                {key.isActive ? `Disable key ${key.label}` : `Enable key ${key.label}`}
              </button>
            </form>
          ) : null}
        </section>
      ))}
      {canEdit ? (
        <form method="post" action={`/settings/${org.slug}/projects/${project.slug}/keys/`}>
          <CsrfField token={viewer.csrfToken} />
          <button type="submit">Create a key</button>
        </form>
      ) : null}
      <ProjectLimitsSection
        limits={limits}
        base={`/settings/${org.slug}/projects/${project.slug}`}
        csrf={canEdit ? viewer.csrfToken : null}
      />
    </Layout>,
  );
}

/** Settings: projects (create, DSNs, keys), members (list, invite: seam), account (password, tokens: seam). */
export function registerSettingsPages(web: Hono<WebEnv>): void {
  web.get("/settings/account", async (c) => {
    const viewer = c.get("viewer");
    if (!viewer) throw new PageError(403, "Sign in first.");
    const tokens = await listApiTokens(c.get("services").db.orm, { userId: viewer.user.id });
    const notice = c.req.query("notice");
    return render(
      c,
      <Layout title="Account" viewer={viewer} section="account">
        <h1>Account</h1>
        <Notice message={notice && notice.length < 200 ? notice : undefined} />
        <dl class="facts panel" aria-label="Account">
          <dt>Email</dt>
          <dd>{viewer.user.email}</dd>
          <dt>Name</dt>
          <dd>{viewer.user.name ?? ""}</dd>
        </dl>
        <section class="panel" aria-labelledby="password-heading">
          <h2 id="password-heading">Password</h2>
          <form method="post" action="/settings/account/password/" class="toolbar">
            <CsrfField token={viewer.csrfToken} />
            <div class="field">
              <label for="current">Current password</label>
              <input
                type="password"
                id="current"
                name="current"
                autocomplete="current-password"
                required
                maxlength={1000}
              />
            </div>
            <div class="field">
              <label for="new-password">New password</label>
              <input
                type="password"
                id="new-password"
                name="password"
                autocomplete="new-password"
                required
                minlength={8}
                maxlength={1000}
              />
            </div>
            <button type="submit" class="primary">
              Change password
            </button>
          </form>
        </section>
        <section class="panel" aria-labelledby="tokens-heading">
          <h2 id="tokens-heading">User auth tokens</h2>
          {tokens.length === 0 ? (
            <p class="muted">No tokens.</p>
          ) : (
            <table aria-label="User auth tokens">
              <thead>
                <tr>
                  <th scope="col">Label</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {tokens.map((t) => (
                  <tr>
                    <td>{t.label ?? ""}</td>
                    <td>{t.scopes.join(", ")}</td>
                    <td>
                      <RelativeTime date={t.createdAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </Layout>,
    );
  });

  web.post("/settings/account/password", requireCsrf(), async (c) => {
    const viewer = c.get("viewer");
    if (!viewer) throw new PageError(403, "Sign in first.");
    const body = await c.req.parseBody();
    const current = typeof body.current === "string" ? body.current.slice(0, 1000) : "";
    const next = typeof body.password === "string" ? body.password : "";
    const weak = passwordProblem(next);
    if (weak) throw new PageError(400, weak);
    const { orm } = c.get("services").db;
    const user = await findUserById(orm, viewer.user.id);
    if (!user?.passwordHash || !(await verifyPassword(user.passwordHash, current))) {
      throw new PageError(403, "The current password is not right.");
    }
    await setUserPassword(orm, user.id, await hashPassword(next));
    // Other browsers signed in with the old password are signed out, this one too: sign in again.
    await revokeUserSessions(orm, user.id);
    const secret = getCookie(c, SESSION_COOKIE);
    if (secret) await endSession(c.get("services"), secret);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/auth/login/?next=%2Fsettings%2Faccount%2F", 303);
  });

  web.get("/settings/:org/projects", (c) => projectsPage(c));
  web.post("/settings/:org/projects", requireCsrf(), async (c) => {
    const { org, access } = await orgPage(c);
    requirePageScope(access, "project:write");
    const body = await c.req.parseBody();
    const slug = typeof body.slug === "string" ? body.slug.trim() : "";
    const name = typeof body.name === "string" && body.name.trim() !== "" ? body.name.trim() : slug;
    if (!SLUG.test(slug) || name.length > 50) {
      return projectsPage(c, {
        message: "A slug is 1 to 50 lowercase letters, digits, - or _, not only digits.",
        error: true,
      });
    }
    const { orm } = c.get("services").db;
    const { created, project } = await ensureProject(orm, org.id, slug, name);
    if (!created)
      return projectsPage(c, { message: `A project named ${slug} exists already.`, error: true });
    await createProjectKey(orm, project.id);
    return c.redirect(`/settings/${org.slug}/projects/${project.slug}/`, 303);
  });
  web.get("/settings/:org/projects/:project", (c) => projectPage(c));
  web.post("/settings/:org/projects/:project/keys", requireCsrf(), async (c) => {
    const page = await orgPage(c);
    requirePageScope(page.access, "project:write");
    const project = page.projects.find((p) => p.slug === c.req.param("project"));
    if (!project)
      throw new PageError(
        404,
        "There is no such project in this organization, or you cannot see it.",
      );
    await createProjectKey(c.get("services").db.orm, project.id);
    return c.redirect(`/settings/${page.org.slug}/projects/${project.slug}/`, 303);
  });
  web.post("/settings/:org/projects/:project/keys/:keyId{[0-9]+}", requireCsrf(), async (c) => {
    const page = await orgPage(c);
    requirePageScope(page.access, "project:write");
    const project = page.projects.find((p) => p.slug === c.req.param("project"));
    if (!project)
      throw new PageError(
        404,
        "There is no such project in this organization, or you cannot see it.",
      );
    const { orm } = c.get("services").db;
    const key = (await listProjectKeys(orm, project.id)).find(
      (k) => String(k.id) === c.req.param("keyId"),
    );
    if (!key) throw new PageError(404, "This project has no such key.");
    const body = await c.req.parseBody();
    await setProjectKeyActive(orm, key.id, body.active === "true");
    return c.redirect(`/settings/${page.org.slug}/projects/${project.slug}/`, 303);
  });

  web.get("/settings/:org/members", async (c) => {
    const { org, access } = await orgPage(c);
    const viewer = c.get("viewer");
    const members = await listMembers(c.get("services").db.orm, org.id, MAX_MEMBERS, 0);
    const roles = grantableRoles(access);
    const canAdmin = access.scopes.has("member:admin") && viewer;
    const notice = c.req.query("notice");
    return render(
      c,
      <Layout title={`Members — ${org.name}`} viewer={viewer} org={org} section="members">
        <h1>Members</h1>
        <Notice message={notice && notice.length < 2_000 ? notice : undefined} />
        <table aria-label="Members">
          <thead>
            <tr>
              <th scope="col">Member</th>
              <th scope="col">Role</th>
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr>
                <td>
                  {m.userName ? `${m.userName} · ` : ""}
                  {m.email}
                  {m.userId === null ? <span class="muted"> (invited)</span> : null}
                </td>
                <td>
                  {canAdmin && roles.includes(m.role) ? (
                    <form
                      method="post"
                      action={`/settings/${org.slug}/members/${m.id}/`}
                      class="inline"
                    >
                      <CsrfField token={viewer.csrfToken} />
                      <select name="role" aria-label={`Role of ${m.email}`}>
                        {roles.map((r) => (
                          <option value={r} selected={r === m.role}>
                            {r}
                          </option>
                        ))}
                      </select>{" "}
                      <button type="submit">{`Change role of ${m.email}`}</button>
                    </form>
                  ) : (
                    m.role
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {access.scopes.has("member:invite") && viewer ? (
          <section class="panel" aria-labelledby="invite-heading">
            <h2 id="invite-heading">Invite a member</h2>
            <form method="post" action={`/settings/${org.slug}/members/`} class="toolbar">
              <CsrfField token={viewer.csrfToken} />
              <div class="field">
                <label for="invite-email">Email</label>
                <input type="email" id="invite-email" name="email" required maxlength={320} />
              </div>
              <div class="field">
                <label for="invite-role">Role</label>
                <select id="invite-role" name="role">
                  {roles.map((r) => (
                    <option value={r}>{r}</option>
                  ))}
                </select>
              </div>
              <button type="submit" class="primary">
                Invite
              </button>
            </form>
          </section>
        ) : null}
      </Layout>,
    );
  });
  web.post("/settings/:org/members", requireCsrf(), async (c) => {
    const { org, access } = await orgPage(c);
    requirePageScope(access, "member:invite");
    const viewer = c.get("viewer");
    const body = await c.req.parseBody();
    const email = typeof body.email === "string" ? body.email.trim() : "";
    const role = typeof body.role === "string" ? body.role : "";
    if (
      !/^[^\s@]{1,64}@[^\s@]{1,255}$/.test(email) ||
      !isOrganizationRole(role) ||
      !grantableRoles(access).includes(role)
    ) {
      throw new PageError(400, "Give an email address and a role no higher than yours.");
    }
    try {
      const { inviteLink } = await inviteMember(
        c.get("services"),
        org,
        email,
        role,
        viewer?.caller ?? null,
      );
      const notice = inviteLink
        ? `Invited ${email}. No mail server is set up: send them this link yourself: ${inviteLink}`
        : `Invited ${email}: they got a mail with a link to accept.`;
      return c.redirect(`/settings/${org.slug}/members/?notice=${encodeURIComponent(notice)}`, 303);
    } catch (error) {
      if (error instanceof MembershipError) throw new PageError(409, error.message);
      throw error;
    }
  });
  web.post("/settings/:org/members/:memberId{[0-9]+}", requireCsrf(), async (c) => {
    const { org, access } = await orgPage(c);
    requirePageScope(access, "member:admin");
    const viewer = c.get("viewer");
    const { orm } = c.get("services").db;
    const member = await findMember(orm, org.id, Number(c.req.param("memberId")));
    if (!member) throw new PageError(404, "This organization has no such member.");
    const body = await c.req.parseBody();
    const role = typeof body.role === "string" ? body.role : "";
    const roles = grantableRoles(access);
    if (!isOrganizationRole(role) || !roles.includes(role) || !roles.includes(member.role)) {
      throw new PageError(403, "You cannot give or take a role above your own.");
    }
    try {
      await changeMemberRole(c.get("services"), org, member, role, viewer?.caller ?? null);
    } catch (error) {
      if (error instanceof MembershipError) throw new PageError(400, error.message);
      throw error;
    }
    const notice = `${member.email} is now ${role}.`;
    return c.redirect(`/settings/${org.slug}/members/?notice=${encodeURIComponent(notice)}`, 303);
  });
}
