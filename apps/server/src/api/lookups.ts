import {
  findIssue,
  findOrganization,
  findOrganizationById,
  findProject,
  findProjectById,
  findProjectsBySlugOrId,
  findRelease,
  isStorableText,
  type Organization,
  type Project,
} from "@sluice/db";
import type { Context } from "hono";
import type { OrganizationAccess } from "../accounts/access.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { forbidden } from "./require-scope.ts";

/** Longest slug or release version a path may name (versions stop at 200): a bound on query input. */
const MAX_NAME_IN_PATH = 1000;

/**
 * Path parameter `name` when it can name a stored row (non-empty, bounded,
 * no NUL or lone surrogate), else null: such a path is a 404 without a query.
 */
function nameParam(c: Context<ApiEnv>, name: string): string | null {
  const value = c.req.param(name);
  if (value === undefined || value === "" || value.length > MAX_NAME_IN_PATH) return null;
  return isStorableText(value) ? value : null;
}

/** Path parameter `name` as a row id (decimal digits, a safe positive integer), else null. */
export function idParam(c: Context<ApiEnv>, name: string): number | null {
  const value = c.req.param(name) ?? "";
  if (!/^\d{1,16}$/.test(value)) return null;
  const id = Number(value);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/**
 * The caller's access in `org`, checked against the route's scope: 404
 * when the caller is not in the organization (its existence does not
 * leak), 403 when it is but lacks the scope.
 */
export async function accessIn(c: Context<ApiEnv>, org: Organization): Promise<OrganizationAccess> {
  const access = await c.get("access").forOrganization(org);
  if (!access) throw notFound("organization");
  const scope = c.get("scope");
  if (scope !== undefined && !access.scopes.has(scope)) throw forbidden(scope);
  return access;
}

/** Resolves `:org` (one the caller may see, with the route's scope) or throws 404/403. */
export async function organizationParam(c: Context<ApiEnv>) {
  const slug = nameParam(c, "org");
  const org = slug === null ? null : await findOrganization(c.get("services").db.orm, slug);
  if (!org) throw notFound("organization");
  await accessIn(c, org);
  return org;
}

/** Resolves `:org` and the caller's access in it, or throws 404/403. */
export async function organizationAndAccess(c: Context<ApiEnv>) {
  const org = await organizationParam(c);
  return { org, access: await accessIn(c, org) };
}

/** Throws 404 unless the caller sees `project` (organization membership, then teams). */
async function checkProjectAccess(c: Context<ApiEnv>, project: Project): Promise<void> {
  const org = await findOrganizationById(c.get("services").db.orm, project.organizationId);
  if (!org) throw notFound("project");
  const access = await accessIn(c, org);
  if (!access.canSeeProject(project.id)) throw notFound("project");
}

/** Resolves `:org/:project` (one the caller may see) or throws 404/403. */
export async function projectParam(c: Context<ApiEnv>) {
  const org = nameParam(c, "org");
  const slug = nameParam(c, "project");
  const project =
    org === null || slug === null ? null : await findProject(c.get("services").db.orm, org, slug);
  if (!project) throw notFound("project");
  await checkProjectAccess(c, project);
  return project;
}

/**
 * Resolves `:org` and `:version` (and `:project` when in the path) or throws
 * 404. Under a project the release must belong to it, as Sentry's
 * ProjectReleaseDetailsEndpoint looks it up by project and version.
 */
export async function releaseParam(c: Context<ApiEnv>) {
  const org = await organizationParam(c);
  const project = c.req.param("project") === undefined ? null : await projectParam(c);
  const version = nameParam(c, "version");
  const release =
    version === null
      ? null
      : await findRelease(c.get("services").db.orm, org.id, version, project?.id ?? null);
  if (!release) throw notFound("release");
  return { org, project, release };
}

/** Resolves `:issueId` (and `:org` when in the path) or throws 404. */
export async function issueParam(c: Context<ApiEnv>) {
  const { orm } = c.get("services").db;
  const id = idParam(c, "issueId");
  const issue = id === null ? null : await findIssue(orm, id);
  if (!issue) throw notFound("issue");
  const project = await findProjectById(orm, issue.projectId);
  const orgSlug = c.req.param("org");
  if (!project || (orgSlug !== undefined && project.organizationSlug !== orgSlug))
    throw notFound("issue");
  try {
    await checkProjectAccess(c, project);
  } catch (error) {
    // Another organization's issue is "not found", never "not your project".
    if (error instanceof ApiError && error.status === 404) throw notFound("issue");
    throw error;
  }
  return { issue, project };
}

/**
 * The projects of organization `organizationId` that a request body names
 * by slug or id (sentry-cli sends slugs); null when any name matches none.
 */
export async function namedProjects(
  c: Context<ApiEnv>,
  organizationId: number,
  names: (string | number)[],
): Promise<Project[] | null> {
  const wanted = [...new Set(names.map(String))];
  const all = await findProjectsBySlugOrId(c.get("services").db.orm, organizationId, wanted);
  const org = await findOrganizationById(c.get("services").db.orm, organizationId);
  const access = org ? await accessIn(c, org) : null;
  const found = all.filter((p) => access?.canSeeProject(p.id));
  const matched = wanted.every((n) => found.some((p) => p.slug === n || String(p.id) === n));
  return matched ? found : null;
}
