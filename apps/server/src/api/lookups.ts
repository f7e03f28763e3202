import {
  findIssue,
  findOrganization,
  findProject,
  findProjectById,
  findProjectsBySlugOrId,
  type Project,
} from "@sluice/db";
import type { Context } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { notFound } from "./api-error.ts";

/** Resolves `:org` or throws 404. */
export async function organizationParam(c: Context<ApiEnv>) {
  const org = await findOrganization(c.get("services").db.orm, c.req.param("org") ?? "");
  if (!org) throw notFound("organization");
  return org;
}

/** Resolves `:org/:project` or throws 404. */
export async function projectParam(c: Context<ApiEnv>) {
  const project = await findProject(
    c.get("services").db.orm,
    c.req.param("org") ?? "",
    c.req.param("project") ?? "",
  );
  if (!project) throw notFound("project");
  return project;
}

/** Resolves `:issueId` (and `:org` when in the path) or throws 404. */
export async function issueParam(c: Context<ApiEnv>) {
  const { orm } = c.get("services").db;
  const id = Number(c.req.param("issueId"));
  const issue = Number.isSafeInteger(id) && id > 0 ? await findIssue(orm, id) : null;
  if (!issue) throw notFound("issue");
  const project = await findProjectById(orm, issue.projectId);
  const orgSlug = c.req.param("org");
  if (!project || (orgSlug !== undefined && project.organizationSlug !== orgSlug))
    throw notFound("issue");
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
  const found = await findProjectsBySlugOrId(c.get("services").db.orm, organizationId, wanted);
  const matched = wanted.every((n) => found.some((p) => p.slug === n || String(p.id) === n));
  return matched ? found : null;
}
