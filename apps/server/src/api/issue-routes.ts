import { type IssueStatus, listIssueEvents, listIssues, setIssueStatus } from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { notFound } from "./api-error.ts";
import { parseInput, storableText } from "./input.ts";
import { issueParam, projectParam } from "./lookups.ts";
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

const issueUpdate = z.object({
  status: z.enum(Object.keys(STATUS_ALIASES) as [string, ...string[]], {
    error: "status must be one of resolved, unresolved, ignored",
  }),
});

/** Longest issue search accepted; Sentry's search bar sends a few words. */
const MAX_QUERY_LENGTH = 1_000;

const issueListQuery = z.object({
  query: storableText(MAX_QUERY_LENGTH).optional(),
});

/**
 * Reads Sentry's issue search: `is:unresolved|resolved|ignored` (`muted` is
 * the legacy alias) and free text matched against titles. Without a `query`
 * parameter Sentry shows unresolved issues; an empty one shows all.
 */
export function parseIssueQuery(query: string | undefined): {
  status: IssueStatus | null;
  text: string | null;
} {
  if (query === undefined) return { status: "unresolved", text: null };
  let status: IssueStatus | null = null;
  const words: string[] = [];
  for (const token of query.trim().split(/\s+/).filter(Boolean)) {
    const is = /^is:(\w+)$/.exec(token);
    const alias = is ? STATUS_ALIASES[is[1] as string] : undefined;
    if (alias) status = alias;
    else if (!is) words.push(token);
  }
  return { status, text: words.length > 0 ? words.join(" ") : null };
}

/** Issues of a project, one issue with its status, and an issue's events. */
export function registerIssueRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/projects/:org/:project/issues", requireScope("event:read"), async (c) => {
    const { db, config } = c.get("services");
    const project = await projectParam(c);
    const { query } = parseInput(issueListQuery, c.req.query(), "query");
    const { status, text } = parseIssueQuery(query);
    const rows = await pageOf(c, (limit, offset) =>
      listIssues(db.orm, { projectIds: [project.id], status, text }, limit, offset),
    );
    return c.json(
      rows.map((i) => serializeIssue(i, project, project.organizationSlug, config.publicUrl)),
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
      const status = STATUS_ALIASES[body.status] as IssueStatus;
      const updated = await setIssueStatus(c.get("services").db.orm, issue.id, status);
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
  const { orm } = c.get("services").db;
  const rows =
    c.req.param("which") === "oldest"
      ? (await listIssueEvents(orm, issue.id, 1, Math.max(0, issue.timesSeen - 1))).slice(-1)
      : await listIssueEvents(orm, issue.id, 1, 0);
  if (!rows[0]) throw notFound("event");
  return c.json(serializeEvent(rows[0]));
}
