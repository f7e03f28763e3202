import { eq, sql } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { projectGroupingRules, projects } from "../schema.ts";

/** A project's grouping rule text in Sentry's syntax; '' is none. */
export type ProjectGroupingRuleText = {
  fingerprintingRules: string;
  groupingEnhancements: string;
};

/** The project's grouping rule text; both '' when it never set any. */
export async function findProjectGroupingRules(
  orm: Orm,
  projectId: number,
): Promise<ProjectGroupingRuleText> {
  const rows = await orm
    .select({
      fingerprintingRules: projectGroupingRules.fingerprintingRules,
      groupingEnhancements: projectGroupingRules.groupingEnhancements,
    })
    .from(projectGroupingRules)
    .where(eq(projectGroupingRules.projectId, projectId))
    .limit(1);
  return rows[0] ?? { fingerprintingRules: "", groupingEnhancements: "" };
}

/** What the worker groups a project's events by. */
export type ProjectGroupingSettings = ProjectGroupingRuleText & {
  /** Until when the previous grouping config's hashes also find issues; null: no transition. */
  secondaryGroupingExpiry: Date | null;
};

/**
 * The project's grouping rule text (both '' when it never set any) and the
 * end of its grouping config transition, in one query; null when there is no
 * such project.
 */
export async function findProjectGroupingSettings(
  orm: Orm,
  projectId: number,
): Promise<ProjectGroupingSettings | null> {
  const rows = await orm
    .select({
      fingerprintingRules: projectGroupingRules.fingerprintingRules,
      groupingEnhancements: projectGroupingRules.groupingEnhancements,
      secondaryGroupingExpiry: projects.secondaryGroupingExpiry,
    })
    .from(projects)
    .leftJoin(projectGroupingRules, eq(projectGroupingRules.projectId, projects.id))
    .where(eq(projects.id, projectId))
    .limit(1);
  const row = rows[0];
  if (!row) return null;
  return {
    fingerprintingRules: row.fingerprintingRules ?? "",
    groupingEnhancements: row.groupingEnhancements ?? "",
    secondaryGroupingExpiry: row.secondaryGroupingExpiry,
  };
}

/**
 * Sets the fields given (an absent field keeps its text) and returns the
 * project's rule text after the write. Callers validate the text first.
 */
export async function updateProjectGroupingRules(
  orm: Orm,
  projectId: number,
  update: Partial<ProjectGroupingRuleText>,
): Promise<ProjectGroupingRuleText> {
  const set = {
    ...(update.fingerprintingRules === undefined
      ? {}
      : { fingerprintingRules: update.fingerprintingRules }),
    ...(update.groupingEnhancements === undefined
      ? {}
      : { groupingEnhancements: update.groupingEnhancements }),
  };
  const rows = await orm
    .insert(projectGroupingRules)
    .values({ projectId, ...set })
    .onConflictDoUpdate({
      target: projectGroupingRules.projectId,
      set: { ...set, updatedAt: sql`now()` },
    })
    .returning({
      fingerprintingRules: projectGroupingRules.fingerprintingRules,
      groupingEnhancements: projectGroupingRules.groupingEnhancements,
    });
  const row = rows[0];
  if (!row) throw new Error(`grouping rules of project ${projectId} were not written`);
  return row;
}
