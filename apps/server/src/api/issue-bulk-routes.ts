import {
  findIssuesInScope,
  type IssueStatus,
  type ResolveDetails,
  searchIssues,
  setIssuesStatus,
  statusDetailsOf,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { mergeIssuesInScope } from "../issue-merging.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";
import { parseInput } from "./input.ts";
import { searchOfRequest, statusUpdateOf } from "./issue-routes.ts";
import { organizationAndAccess, organizationParam, projectParam } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";

/**
 * Most issues one bulk update touches: Sentry's BULK_MUTATION_LIMIT
 * (src/sentry/api/helpers/group_index/__init__.py), both for `?id=` lists
 * and for the issues an id-less status update selects by query.
 */
export const BULK_MUTATION_LIMIT = 1000;

const STATUS_ALIASES: Record<string, IssueStatus> = {
  unresolved: "unresolved",
  resolved: "resolved",
  resolvedInNextRelease: "resolved",
  ignored: "ignored",
  muted: "ignored",
};

/** DRF's BooleanField: the spellings of true and false it accepts. */
const drfBoolean = z.union([
  z.boolean(),
  z.literal(1).transform(() => true),
  z.literal(0).transform(() => false),
  z.enum(["true", "True", "TRUE", "1", "yes", "on", "t", "y"]).transform(() => true),
  z.enum(["false", "False", "FALSE", "0", "no", "off", "f", "n"]).transform(() => false),
]);

const bulkUpdate = z.object({
  status: z
    .enum(Object.keys(STATUS_ALIASES) as [string, ...string[]], {
      error: "status must be one of resolved, unresolved, ignored",
    })
    .optional(),
  statusDetails: z
    .object({
      inNextRelease: drfBoolean.optional(),
      inRelease: z.string().min(1).max(250).optional(),
    })
    .passthrough()
    .optional(),
  merge: drfBoolean.optional(),
});

const idParam = z
  .string()
  .regex(/^\d{1,16}$/, "must be an issue id")
  .transform(Number)
  .pipe(z.number().int().positive().max(Number.MAX_SAFE_INTEGER));

const CROSS_PROJECT = "Merging across multiple projects is not supported";

/**
 * Sentry's bulk mutate of issues (ProjectGroupIndexEndpoint.put and
 * OrganizationGroupIndexEndpoint.put, src/sentry/api/helpers/group_index/
 * update.py): `PUT …/issues/?id=1&id=2` with `{"status": …}` and/or
 * `{"merge": 1}`.
 */
export function registerIssueBulkRoutes(api: Hono<ApiEnv>): void {
  api.put("/api/0/projects/:org/:project/issues", requireScope("event:write"), async (c) => {
    const org = await organizationParam(c);
    const project = await projectParam(c);
    return bulkMutate(c, org.id, [project.id]);
  });

  api.put("/api/0/organizations/:org/issues", requireScope("event:write"), async (c) => {
    const { org, access } = await organizationAndAccess(c);
    const projects = (c.req.queries("project") ?? []).filter((p) => p !== "-1");
    const named = projects.map((p) => parseInput(idParam, p, "project"));
    // A member without Open Membership reaches only its teams' projects.
    const projectIds =
      access.projectIds === "all"
        ? named.length > 0
          ? named
          : null
        : (named.length > 0 ? named : access.projectIds).filter((id) => access.canSeeProject(id));
    if (projectIds !== null && projectIds.length === 0) return c.body(null, 204);
    return bulkMutate(c, org.id, projectIds);
  });
}

/**
 * Applies a bulk update to the issues `?id=` names that are live issues of
 * the organization (and of `projectIds`, when given); other ids are ignored,
 * so an id of another organization or project is never touched. Without
 * `?id=`, a status update applies to the issues of `query` (Sentry's
 * search, `is:unresolved` when absent; `?status=` narrows it), at most
 * {@link BULK_MUTATION_LIMIT}; a merge needs ids. The status goes first,
 * then the merge (all issues in one project; the parent is Sentry's pick,
 * see `mergeIssues`). Answers Sentry's echo of what changed (`{"status":
 * …, "statusDetails": {}}`, `{"merge": {"parent": …, "children": […]}}`),
 * 204 when no issue matched, 400 for more than 1,000 ids, a malformed id, a
 * body with neither field, or a merge across projects.
 */
async function bulkMutate(
  c: Context<ApiEnv>,
  organizationId: number,
  projectIds: number[] | null,
): Promise<Response> {
  const rawIds = c.req.queries("id") ?? [];
  if (rawIds.length > BULK_MUTATION_LIMIT) {
    throw new ApiError(400, `Too many ids: at most ${BULK_MUTATION_LIMIT} issues per request.`);
  }
  const ids = rawIds.map((id) => parseInput(idParam, id, "id"));
  const body = await readJsonBody(c, bulkUpdate);
  if (body.status === undefined && body.merge === undefined) {
    throw new ApiError(400, "Nothing to update: Sluice's bulk update takes status and merge.");
  }
  if (body.merge && ids.length === 0) {
    throw new ApiError(400, "merge needs the ids of the issues to merge (?id=…&id=…).");
  }
  const { db } = c.get("services");
  const issues =
    ids.length > 0
      ? await findIssuesInScope(db.orm, { organizationId, projectIds }, ids)
      : await issuesOfQuery(c, organizationId, projectIds);
  if (issues.length === 0) return c.body(null, 204);
  // The merge is checked before the status changes, so a refused merge changes nothing.
  const merging = body.merge === true && issues.length > 1;
  if (merging && new Set(issues.map((i) => i.projectId)).size > 1) {
    throw new ApiError(400, CROSS_PROJECT);
  }
  const result: Record<string, unknown> = {};
  if (body.status !== undefined) {
    const issueProjects = [...new Set(issues.map((i) => i.projectId))];
    const releaseResolve =
      body.status === "resolvedInNextRelease" ||
      body.statusDetails?.inNextRelease === true ||
      body.statusDetails?.inRelease !== undefined;
    // Sentry resolves by release in one project only (update.py, "multiple projects").
    if (releaseResolve && body.status !== "unresolved" && issueProjects.length > 1) {
      throw new ApiError(400, "Cannot set resolved in release for multiple projects.");
    }
    const { status, resolution } = await statusUpdateOf(
      c,
      issueProjects[0] as number,
      body as { status: string; statusDetails?: ResolveDetails },
    );
    await setIssuesStatus(
      db.orm,
      issues.map((i) => i.id),
      status,
      resolution,
    );
    result.status = body.status === "resolvedInNextRelease" ? "resolved" : body.status;
    result.statusDetails = statusDetailsOf({
      status,
      resolutionType: resolution?.type ?? null,
      resolutionRelease: resolution?.release ?? null,
    });
    if (status !== "unresolved") result.inbox = null;
  }
  if (body.merge !== undefined) {
    const merged = merging
      ? await mergeIssuesInScope(
          db,
          { organizationId, projectIds },
          issues.map((i) => i.id),
        )
      : null;
    if (merged === "cross-project") throw new ApiError(400, CROSS_PROJECT);
    result.merge = merged
      ? { parent: String(merged.parentId), children: merged.childIds.map(String) }
      : body.merge;
  }
  return c.json(result);
}

/** The issues an id-less update selects: Sentry's search of `query` (and `status`), bounded. */
async function issuesOfQuery(
  c: Context<ApiEnv>,
  organizationId: number,
  projectIds: number[] | null,
) {
  const { db } = c.get("services");
  if (projectIds === null) {
    throw new ApiError(400, "An update without ids needs ?project= in the organization form.");
  }
  const search = searchOfRequest(c, projectIds);
  const status = c.req.query("status");
  if (status !== undefined) {
    const only = STATUS_ALIASES[status];
    if (!only) throw new ApiError(400, "status must be one of resolved, unresolved, ignored");
    search.statuses = { include: [only], exclude: [] };
  }
  const found = await searchIssues(db.pool, search, "date", BULK_MUTATION_LIMIT, 0);
  // searchIssues filters by project only; the scope query keeps the organization check in one place.
  return findIssuesInScope(
    db.orm,
    { organizationId, projectIds },
    found.map((i) => i.id),
  );
}
