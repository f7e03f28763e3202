import {
  findIssue,
  findOrganization,
  findProjectById,
  isStorableText,
  listProjects,
  type Organization,
  type Project,
} from "@sluice/db";
import type { Context } from "hono";
import { loadAccess, type OrganizationAccess } from "../accounts/access.ts";
import { PageError, PageRedirect, type WebEnv } from "./web-env.ts";

/**
 * How pages resolve what their path names, always through the viewer's
 * access: an organization the viewer is not a member of, a project they
 * cannot see, or an issue of such a project is a 404 page (as Sentry hides
 * what one may not see), never a hint that it exists.
 */

/** Most projects a page lists for one organization. */
const MAX_PROJECTS = 500;

export type OrgPage = {
  org: Organization;
  access: OrganizationAccess;
  /** The organization's projects the viewer can see, by slug. */
  projects: Project[];
};

/** Path parameter `name` when it can name a stored row, else null. */
function nameParam(c: Context<WebEnv>, name: string): string | null {
  const value = c.req.param(name);
  if (value === undefined || value === "" || value.length > 200) return null;
  return isStorableText(value) ? value : null;
}

/** Path parameter `name` as a row id, else null. */
function idParam(c: Context<WebEnv>, name: string): number | null {
  const value = c.req.param(name) ?? "";
  if (!/^\d{1,16}$/.test(value)) return null;
  const id = Number(value);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** Resolves `:org` for the viewer, with their access and visible projects, or throws a 404. */
export async function orgPage(c: Context<WebEnv>): Promise<OrgPage> {
  const services = c.get("services");
  const slug = nameParam(c, "org");
  const org = slug === null ? null : await findOrganization(services.db.orm, slug);
  const viewer = c.get("viewer");
  const access = org && viewer ? await loadAccess(services, viewer).forOrganization(org) : null;
  if (!org || !access)
    throw new PageError(404, "There is no organization of that name that you are a member of.");
  const all = await listProjects(services.db.orm, org.id, MAX_PROJECTS, 0);
  return { org, access, projects: all.filter((p) => access.canSeeProject(p.id)) };
}

/**
 * Resolves `:org` and `:issueId` (an issue of a project the viewer can see), or throws a 404;
 * a GET of a merged issue throws a redirect to the same page of the issue it was merged into.
 */
export async function issuePage(c: Context<WebEnv>) {
  const page = await orgPage(c);
  const { orm } = c.get("services").db;
  const id = idParam(c, "issueId");
  const issue = id === null ? null : await findIssue(orm, id);
  const project = issue ? await findProjectById(orm, issue.projectId) : null;
  if (
    !issue ||
    !project ||
    project.organizationId !== page.org.id ||
    !page.access.canSeeProject(project.id)
  ) {
    throw new PageError(
      404,
      "There is no such issue in this organization, or you cannot see its project.",
    );
  }
  if (issue.id !== id && c.req.method === "GET") {
    // A merged issue's pages show the issue it was merged into, as Sentry's do.
    const url = new URL(c.req.url);
    const path = url.pathname.replace(`/issues/${c.req.param("issueId")}`, `/issues/${issue.id}`);
    throw new PageRedirect(`${path}${url.search}`);
  }
  return { ...page, issue, project };
}

/** Resolves `:org` and `:project` (a project the viewer can see, by slug), or throws a 404. */
export async function projectSettingsPage(c: Context<WebEnv>) {
  const page = await orgPage(c);
  const project = page.projects.find((p) => p.slug === c.req.param("project"));
  if (!project) {
    throw new PageError(
      404,
      "There is no such project in this organization, or you cannot see it.",
    );
  }
  return { ...page, project };
}

/** Throws a 403 page unless the viewer's role grants `scope` in the organization. */
export function requirePageScope(access: OrganizationAccess, scope: string): void {
  if (!access.scopes.has(scope)) {
    throw new PageError(
      403,
      `Your role in this organization does not allow this (it needs ${scope}).`,
    );
  }
}
