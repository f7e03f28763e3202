import { and, desc, eq, ilike, inArray, type SQL } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { issues } from "../schema.ts";

export type Issue = typeof issues.$inferSelect;
export type IssueStatus = "unresolved" | "resolved" | "ignored";

export type IssueFilter = {
  projectIds: number[];
  /** Null: any status. */
  status: IssueStatus | null;
  /** Free text matched against the title, case-insensitively. */
  text: string | null;
};

/** Issues of the projects, newest last-seen first. */
export async function listIssues(
  orm: Orm,
  filter: IssueFilter,
  limit: number,
  offset: number,
): Promise<Issue[]> {
  const conditions: SQL[] = [inArray(issues.projectId, filter.projectIds)];
  if (filter.status) conditions.push(eq(issues.status, filter.status));
  if (filter.text) conditions.push(ilike(issues.title, `%${escapeLike(filter.text)}%`));
  return orm
    .select()
    .from(issues)
    .where(and(...conditions))
    .orderBy(desc(issues.lastSeen), desc(issues.id))
    .limit(limit)
    .offset(offset);
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export async function findIssue(orm: Orm, id: number): Promise<Issue | null> {
  const rows = await orm.select().from(issues).where(eq(issues.id, id)).limit(1);
  return rows[0] ?? null;
}

/** Sets an issue's status; returns the updated issue, null when absent. */
export async function setIssueStatus(
  orm: Orm,
  id: number,
  status: IssueStatus,
): Promise<Issue | null> {
  const rows = await orm
    .update(issues)
    .set({ status, resolvedAt: status === "resolved" ? new Date() : null })
    .where(eq(issues.id, id))
    .returning();
  return rows[0] ?? null;
}
