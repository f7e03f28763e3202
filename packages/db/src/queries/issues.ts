import { and, eq, inArray, isNull, type SQL } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { issues, projects } from "../schema.ts";
import type { ResolutionType } from "./issue-resolution.ts";

export type Issue = typeof issues.$inferSelect;
export type IssueStatus = "unresolved" | "resolved" | "ignored";

/**
 * The issue with this id or, when it was merged, the issue it was merged
 * into: Sentry's GroupEndpoint answers a merged group's id with its parent
 * (`get_group_with_redirect`). A merge points every earlier child at the new
 * parent, so one hop is enough; a cycle (never written) ends after a few.
 */
export async function findIssue(orm: Orm, id: number): Promise<Issue | null> {
  let wanted = id;
  for (let hop = 0; hop < 4; hop++) {
    const rows = await orm.select().from(issues).where(eq(issues.id, wanted)).limit(1);
    const issue = rows[0];
    if (!issue || issue.mergedIntoId === null) return issue ?? null;
    wanted = issue.mergedIntoId;
  }
  return null;
}

/**
 * The live issues among `ids` in the organization (and in `projectIds`
 * when given): the ids a bulk update may touch. Ids of other organizations
 * or projects, and merged issues, are left out.
 */
export async function findIssuesInScope(
  orm: Orm,
  scope: { organizationId: number; projectIds: number[] | null },
  ids: number[],
): Promise<Issue[]> {
  if (ids.length === 0) return [];
  const conditions: SQL[] = [
    inArray(issues.id, ids),
    isNull(issues.mergedIntoId),
    inArray(
      issues.projectId,
      orm
        .select({ id: projects.id })
        .from(projects)
        .where(eq(projects.organizationId, scope.organizationId)),
    ),
  ];
  if (scope.projectIds) conditions.push(inArray(issues.projectId, scope.projectIds));
  return orm
    .select()
    .from(issues)
    .where(and(...conditions))
    .orderBy(issues.id);
}

/**
 * A release resolution to record with a resolve (issue-resolution.ts):
 * `in_next_release` names the project's latest release at the time.
 */
export type IssueResolutionInput = { type: ResolutionType; release: string } | null;

const statusColumns = (status: IssueStatus, resolution: IssueResolutionInput) => ({
  status,
  resolvedAt: status === "resolved" ? new Date() : null,
  resolutionType: status === "resolved" ? (resolution?.type ?? null) : null,
  resolutionRelease: status === "resolved" ? (resolution?.release ?? null) : null,
});

/** Sets the status (and release resolution, for a resolve) of the issues; returns how many changed. */
export async function setIssuesStatus(
  orm: Orm,
  ids: number[],
  status: IssueStatus,
  resolution: IssueResolutionInput = null,
): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await orm
    .update(issues)
    .set(statusColumns(status, resolution))
    .where(and(inArray(issues.id, ids), isNull(issues.mergedIntoId)))
    .returning({ id: issues.id });
  return rows.length;
}

/** Sets an issue's status (and release resolution); returns the updated issue, null when absent. */
export async function setIssueStatus(
  orm: Orm,
  id: number,
  status: IssueStatus,
  resolution: IssueResolutionInput = null,
): Promise<Issue | null> {
  const rows = await orm
    .update(issues)
    .set(statusColumns(status, resolution))
    .where(eq(issues.id, id))
    .returning();
  return rows[0] ?? null;
}
