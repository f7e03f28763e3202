import { and, asc, eq, isNull, or, sql } from "drizzle-orm";
import type { Orm, Queryable } from "../database.ts";
import { projectKeys, projects, quotas, spikeProtection } from "../schema.ts";
import type { ProjectKey } from "./project-keys.ts";

export type QuotaRow = typeof quotas.$inferSelect;
export type SpikeProtectionRow = typeof spikeProtection.$inferSelect;

/** What `PUT …/keys/{key_id}/` may change; an absent field is left as it is. */
export type ProjectKeyChanges = {
  label?: string;
  isActive?: boolean;
  /** null clears the limit. */
  rateLimit?: { count: number; window: number } | null;
};

/** Applies `changes` to key `id`; returns the key as stored, or null when it is gone. */
export async function updateProjectKey(
  orm: Orm,
  id: number,
  changes: ProjectKeyChanges,
): Promise<ProjectKey | null> {
  const set: Partial<typeof projectKeys.$inferInsert> = {};
  if (changes.label !== undefined) set.label = changes.label;
  if (changes.isActive !== undefined) set.isActive = changes.isActive;
  if (changes.rateLimit !== undefined) {
    set.rateLimitCount = changes.rateLimit?.count ?? null;
    set.rateLimitWindow = changes.rateLimit?.window ?? null;
  }
  if (Object.keys(set).length === 0) {
    const rows = await orm.select().from(projectKeys).where(eq(projectKeys.id, id));
    return rows[0] ?? null;
  }
  const rows = await orm.update(projectKeys).set(set).where(eq(projectKeys.id, id)).returning();
  return rows[0] ?? null;
}

/**
 * The quotas of one scope: the organization's own (`projectId` null) or one
 * project's, oldest first.
 */
export async function listQuotas(
  orm: Orm,
  organizationId: number,
  projectId: number | null,
): Promise<QuotaRow[]> {
  return orm
    .select()
    .from(quotas)
    .where(
      and(
        eq(quotas.organizationId, organizationId),
        projectId === null ? isNull(quotas.projectId) : eq(quotas.projectId, projectId),
      ),
    )
    .orderBy(asc(quotas.id));
}

export type NewQuota = {
  organizationId: number;
  projectId: number | null;
  categories: string[];
  windowSeconds: number;
  quotaLimit: number;
  reasonCode: string;
};

export async function createQuota(orm: Orm, quota: NewQuota): Promise<QuotaRow> {
  const rows = await orm.insert(quotas).values(quota).returning();
  return rows[0] as QuotaRow;
}

/** Deletes quota `id` of the scope; false when it is not there. */
export async function deleteQuota(
  orm: Orm,
  organizationId: number,
  projectId: number | null,
  id: number,
): Promise<boolean> {
  const rows = await orm
    .delete(quotas)
    .where(
      and(
        eq(quotas.id, id),
        eq(quotas.organizationId, organizationId),
        projectId === null ? isNull(quotas.projectId) : eq(quotas.projectId, projectId),
      ),
    )
    .returning({ id: quotas.id });
  return rows.length > 0;
}

/** What ingest enforces for a project: its organization, quotas (its own and the organization's) and spike settings. */
export type ProjectLimits = {
  organizationId: number;
  quotas: QuotaRow[];
  spikeProtectionEnabled: boolean;
};

/** Loads `ProjectLimits` in two queries; null when the project does not exist. */
export async function loadProjectLimits(
  orm: Orm,
  projectId: number,
): Promise<ProjectLimits | null> {
  const project = await orm
    .select({ organizationId: projects.organizationId, enabled: spikeProtection.enabled })
    .from(projects)
    .leftJoin(spikeProtection, eq(spikeProtection.projectId, projects.id))
    .where(eq(projects.id, projectId))
    .limit(1);
  const row = project[0];
  if (!row) return null;
  const found = await orm
    .select()
    .from(quotas)
    .where(
      and(
        eq(quotas.organizationId, row.organizationId),
        or(isNull(quotas.projectId), eq(quotas.projectId, projectId)),
      ),
    )
    .orderBy(asc(quotas.id));
  return {
    organizationId: row.organizationId,
    quotas: found,
    spikeProtectionEnabled: row.enabled ?? true,
  };
}

/** The spike protection row of a project, or null (then: enabled, never tripped). */
export async function findSpikeProtection(
  orm: Orm,
  projectId: number,
): Promise<SpikeProtectionRow | null> {
  const rows = await orm
    .select()
    .from(spikeProtection)
    .where(eq(spikeProtection.projectId, projectId));
  return rows[0] ?? null;
}

export async function setSpikeProtectionEnabled(
  orm: Orm,
  projectId: number,
  enabled: boolean,
): Promise<SpikeProtectionRow> {
  const rows = await orm
    .insert(spikeProtection)
    .values({ projectId, enabled })
    .onConflictDoUpdate({
      target: spikeProtection.projectId,
      set: { enabled, updatedAt: sql`now()` },
    })
    .returning();
  return rows[0] as SpikeProtectionRow;
}

/**
 * Records that a spike started (`active` true, `bound` events per minute)
 * or ended. A start counts a trip only when the project was not already
 * marked active, so several nodes seeing the same spike count it once.
 */
export async function recordSpike(
  orm: Orm,
  projectId: number,
  change: { active: true; bound: number; at: Date } | { active: false; at: Date },
): Promise<void> {
  if (change.active) {
    await orm
      .insert(spikeProtection)
      .values({
        projectId,
        active: true,
        bound: change.bound,
        startedAt: change.at,
        trips: 1,
      })
      .onConflictDoUpdate({
        target: spikeProtection.projectId,
        set: {
          active: true,
          bound: change.bound,
          startedAt: sql`CASE WHEN ${spikeProtection.active} THEN ${spikeProtection.startedAt} ELSE excluded.started_at END`,
          trips: sql`${spikeProtection.trips} + CASE WHEN ${spikeProtection.active} THEN 0 ELSE 1 END`,
          updatedAt: sql`now()`,
        },
      });
    return;
  }
  await orm
    .update(spikeProtection)
    .set({ active: false, endedAt: change.at, updatedAt: sql`now()` })
    .where(and(eq(spikeProtection.projectId, projectId), eq(spikeProtection.active, true)));
}

/** One series cell of `outcomeStats`: the group's labels and the hour bucket's sum. */
export type OutcomeStatsRow = {
  bucket: Date;
  outcome: string;
  category: string;
  reason: string;
  projectId: number;
  quantity: number;
};

export type OutcomeStatsQuery = {
  projectIds: number[];
  /** Inclusive start, exclusive end; hours. */
  start: Date;
  end: Date;
  /** Bucket width (seconds, a multiple of 3600). */
  intervalSeconds: number;
  categories: string[] | null;
  outcomes: string[] | null;
  reasons: string[] | null;
};

/**
 * Sums `outcomes.quantity` per (bucket, outcome, category, reason,
 * project) over the hours in [start, end), for Sentry's `stats_v2`. The
 * caller groups further. Buckets are `start` + k × interval.
 */
export async function outcomeStats(
  db: Queryable,
  query: OutcomeStatsQuery,
): Promise<OutcomeStatsRow[]> {
  if (query.projectIds.length === 0) return [];
  const result = await db.query(
    `SELECT to_timestamp(floor((extract(epoch FROM hour) - $3) / $4) * $4 + $3) AS bucket,
            outcome, category, reason, project_id, sum(quantity)::bigint AS quantity
       FROM outcomes
      WHERE project_id = ANY($1::bigint[])
        AND hour >= to_timestamp($3) AND hour < to_timestamp($2)
        AND ($5::text[] IS NULL OR category = ANY($5::text[]))
        AND ($6::text[] IS NULL OR outcome = ANY($6::text[]))
        AND ($7::text[] IS NULL OR reason = ANY($7::text[]))
      GROUP BY 1, 2, 3, 4, 5
      ORDER BY 1`,
    [
      query.projectIds,
      query.end.getTime() / 1000,
      query.start.getTime() / 1000,
      query.intervalSeconds,
      query.categories,
      query.outcomes,
      query.reasons,
    ],
  );
  return result.rows.map((r) => ({
    bucket: r.bucket,
    outcome: r.outcome,
    category: r.category,
    reason: r.reason,
    projectId: Number(r.project_id),
    quantity: Number(r.quantity),
  }));
}
