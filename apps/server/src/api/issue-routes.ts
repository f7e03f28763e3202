import {
  findIssueEdgeEvent,
  type IssueResolutionInput,
  type IssueSearchQuery,
  type IssueSort,
  type IssueStatus,
  listIssueEvents,
  listProjects,
  type ResolveDetails,
  resolutionOfDetails,
  searchIssues,
  setIssueStatus,
} from "@sluice/db";
import { MAX_SEARCH_LENGTH, parseIssueSearch } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { parseInput, storableText } from "./input.ts";
import { issueParam, organizationAndAccess, projectParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";
import { serializeEvent, serializeIssue } from "./serializers.ts";

const STATUS_ALIASES: Record<string, IssueStatus> = {
  unresolved: "unresolved",
  resolved: "resolved",
  resolvedInNextRelease: "resolved",
  ignored: "ignored",
  muted: "ignored",
};

/** Longest release version Sentry stores (DB_VERSION_LENGTH). */
const MAX_VERSION_LENGTH = 250;

/** Sentry's `statusDetails` of a resolve; other keys (ignore durations) are accepted and not kept. */
const statusDetails = z
  .object({
    inNextRelease: z.boolean().optional(),
    inRelease: z.string().min(1).max(MAX_VERSION_LENGTH).optional(),
  })
  .passthrough();

const issueUpdate = z.object({
  status: z.enum(Object.keys(STATUS_ALIASES) as [string, ...string[]], {
    error: "status must be one of resolved, unresolved, ignored",
  }),
  statusDetails: statusDetails.optional(),
});

/**
 * What a status update records: the status and, for a resolve, its release
 * resolution (`statusDetails.inNextRelease` / `inRelease`, or the legacy
 * status `resolvedInNextRelease`), checked against the project's releases.
 * Throws 400 with Sentry's message when the project has no such release.
 */
export async function statusUpdateOf(
  c: Context<ApiEnv>,
  projectId: number,
  body: { status: string; statusDetails?: ResolveDetails },
): Promise<{ status: IssueStatus; resolution: IssueResolutionInput }> {
  const status = STATUS_ALIASES[body.status] as IssueStatus;
  if (status !== "resolved") return { status, resolution: null };
  const details: ResolveDetails = {
    inNextRelease: body.status === "resolvedInNextRelease" || body.statusDetails?.inNextRelease,
    inRelease: body.statusDetails?.inRelease,
  };
  const found = await resolutionOfDetails(c.get("services").db.pool, projectId, details);
  if ("error" in found) throw new ApiError(400, found.error);
  return { status, resolution: found.resolution };
}

/** Sort orders of the issue list (Sentry's `sort=`). */
const SORTS = new Set<IssueSort>(["date", "new", "freq", "user"]);

const issueListQuery = z.object({
  query: storableText(MAX_SEARCH_LENGTH).optional(),
  sort: z
    .string()
    .refine((v): v is IssueSort => SORTS.has(v as IssueSort), {
      message: "sort must be one of date, new, freq, user",
    })
    .optional(),
});

/**
 * Reads Sentry's issue search (`query`, packages/protocol issue-search.ts)
 * and `environment` parameters into a search over `projectIds`. Without a
 * `query` Sentry shows unresolved issues; an empty one shows all. Throws
 * 400 for a wrong term and for terms Sluice cannot answer (rather than
 * answering as if they were applied).
 */
export function searchOfRequest(c: Context<ApiEnv>, projectIds: number[]): IssueSearchQuery {
  const { query } = parseInput(issueListQuery, { query: c.req.query("query") }, "query");
  const search = parseIssueSearch(query);
  if (search.errors.length > 0) throw new ApiError(400, search.errors.join(" "));
  if (search.notApplied.length > 0) {
    throw new ApiError(400, `Sluice cannot search these yet: ${search.notApplied.join(", ")}`);
  }
  const environments = (c.req.queries("environment") ?? []).filter((e) => e !== "");
  if (environments.length > 20) throw new ApiError(400, "At most 20 environments.");
  for (const e of environments) parseInput(storableText(MAX_SEARCH_LENGTH), e, "environment");
  if (environments.length > 0) {
    search.tags.push({ key: "environment", values: environments, negated: false });
  }
  return { ...search, projectIds };
}

function sortOf(c: Context<ApiEnv>): IssueSort {
  const { sort } = parseInput(issueListQuery, { sort: c.req.query("sort") }, "query");
  return (sort as IssueSort | undefined) ?? "date";
}

/** Project ids of `?project=` (-1: all) the caller sees in the organization; 404 for one it cannot. */
async function organizationProjects(c: Context<ApiEnv>) {
  const { org, access } = await organizationAndAccess(c);
  const visible = await listProjects(
    c.get("services").db.orm,
    org.id,
    10_000,
    0,
    access.projectIds,
  );
  const named = (c.req.queries("project") ?? []).filter((p) => p !== "" && p !== "-1");
  if (named.some((p) => !/^\d{1,16}$/.test(p))) throw new ApiError(400, "project must be an id");
  const selected =
    named.length === 0 ? visible : visible.filter((p) => named.includes(String(p.id)));
  if (named.length > 0 && selected.length < new Set(named).size) throw notFound("project");
  return { org, projects: selected };
}

/** Issues of a project or an organization, one issue with its status, and an issue's events. */
export function registerIssueRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/projects/:org/:project/issues", requireScope("event:read"), async (c) => {
    const { db, config } = c.get("services");
    const project = await projectParam(c);
    const search = searchOfRequest(c, [project.id]);
    const sort = sortOf(c);
    const rows = await pageOf(c, (limit, offset) =>
      searchIssues(db.pool, search, sort, limit, offset),
    );
    return c.json(
      rows.map((i) => serializeIssue(i, project, project.organizationSlug, config.publicUrl)),
    );
  });

  // Sentry's OrganizationGroupIndexEndpoint: the issues of the caller's projects in the organization.
  api.get("/api/0/organizations/:org/issues", requireScope("event:read"), async (c) => {
    const { db, config } = c.get("services");
    const { org, projects } = await organizationProjects(c);
    const search = searchOfRequest(
      c,
      projects.map((p) => p.id),
    );
    const sort = sortOf(c);
    const byId = new Map(projects.map((p) => [p.id, p]));
    const rows = await pageOf(c, (limit, offset) =>
      searchIssues(db.pool, search, sort, limit, offset),
    );
    return c.json(
      rows.flatMap((i) => {
        const project = byId.get(i.projectId);
        return project ? [serializeIssue(i, project, org.slug, config.publicUrl)] : [];
      }),
    );
  });

  for (const prefix of ["/api/0/issues/:issueId", "/api/0/organizations/:org/issues/:issueId"]) {
    api.get(prefix, requireScope("event:read"), async (c) => {
      const { issue, project } = await issueParam(c);
      return c.json(
        serializeIssue(
          issue,
          project,
          project.organizationSlug,
          c.get("services").config.publicUrl,
        ),
      );
    });

    api.put(prefix, requireScope("event:write"), async (c) => {
      const { project, issue } = await issueParam(c);
      const body = await readJsonBody(c, issueUpdate);
      const { status, resolution } = await statusUpdateOf(c, project.id, body);
      const updated = await setIssueStatus(c.get("services").db.orm, issue.id, status, resolution);
      if (!updated) throw notFound("issue");
      return c.json(
        serializeIssue(
          updated,
          project,
          project.organizationSlug,
          c.get("services").config.publicUrl,
        ),
      );
    });

    api.get(`${prefix}/events`, requireScope("event:read"), async (c) => {
      const { issue } = await issueParam(c);
      const rows = await pageOf(c, (limit, offset) =>
        listIssueEvents(c.get("services").db.orm, issue.id, limit, offset),
      );
      return c.json(rows.map(serializeEvent));
    });

    api.get(`${prefix}/events/:which{latest|oldest}`, requireScope("event:read"), (c) =>
      oneIssueEvent(c),
    );
  }
}

async function oneIssueEvent(c: Context<ApiEnv>) {
  const { issue } = await issueParam(c);
  const which = c.req.param("which") === "oldest" ? "oldest" : "latest";
  const row = await findIssueEdgeEvent(c.get("services").db.orm, issue.id, which);
  if (!row) throw notFound("event");
  return c.json(serializeEvent(row));
}
