import { and, asc, desc, eq, inArray, type SQL, sql } from "drizzle-orm";
import { type Database, type Orm, type Queryable, withTransaction } from "../database.ts";
import { deploys, issues, projects, releaseProjects, releases } from "../schema.ts";

export type Release = typeof releases.$inferSelect;
export type Deploy = typeof deploys.$inferSelect;

/** A release with what its API answer shows about projects, issues and deploys. */
export type ReleaseSummary = Release & {
  projects: {
    id: number;
    slug: string;
    name: string;
    platform: string | null;
    newGroups: number;
  }[];
  firstEvent: Date | null;
  lastEvent: Date | null;
  newGroups: number;
  deployCount: number;
  lastDeploy: Deploy | null;
};

export type ReleaseFields = {
  ref?: string | null;
  url?: string | null;
  dateStarted?: Date | null;
  dateReleased?: Date | null;
  commits?: Record<string, unknown>[];
};

/**
 * Creates the release `version` of the organization, or returns the
 * existing one (Sentry answers 208 then; `created` says which), and links
 * it to `projectIds`. Fields are set only on creation.
 */
export async function ensureRelease(
  db: Database,
  organizationId: number,
  version: string,
  projectIds: number[],
  fields: ReleaseFields,
): Promise<{ created: boolean; release: Release }> {
  return withTransaction(db, async ({ orm: tx }) => {
    const inserted = await tx
      .insert(releases)
      .values({ organizationId, version, ...fields })
      .onConflictDoNothing()
      .returning();
    const release =
      inserted[0] ??
      (
        await tx
          .select()
          .from(releases)
          .where(and(eq(releases.organizationId, organizationId), eq(releases.version, version)))
      )[0];
    if (!release) throw new Error(`release ${version} vanished while being created`);
    if (projectIds.length > 0) {
      await tx
        .insert(releaseProjects)
        .values(projectIds.map((projectId) => ({ releaseId: release.id, projectId })))
        .onConflictDoNothing();
    }
    return { created: inserted.length > 0, release };
  });
}

/**
 * The organization's release `version`; when `projectId` is given, only if
 * it belongs to that project (a project-scoped path must not reach another
 * project's release). Null when absent.
 */
export async function findRelease(
  orm: Orm,
  organizationId: number,
  version: string,
  projectId: number | null = null,
): Promise<Release | null> {
  const conditions: SQL[] = [
    eq(releases.organizationId, organizationId),
    eq(releases.version, version),
  ];
  if (projectId !== null) conditions.push(linkedTo([projectId]));
  const rows = await orm
    .select()
    .from(releases)
    .where(and(...conditions))
    .limit(1);
  return rows[0] ?? null;
}

/** The release of the row being selected is linked to `projectId`. */
function linkedTo(projectIds: number[]): SQL {
  return sql`EXISTS (SELECT 1 FROM ${releaseProjects} WHERE ${releaseProjects.releaseId} = ${releases.id} AND ${inArray(releaseProjects.projectId, projectIds)})`;
}

/** Changes the given fields; returns the release after, null when absent. */
export async function updateRelease(
  orm: Orm,
  id: number,
  fields: ReleaseFields,
): Promise<Release | null> {
  if (Object.keys(fields).length === 0) {
    const rows = await orm.select().from(releases).where(eq(releases.id, id));
    return rows[0] ?? null;
  }
  const rows = await orm.update(releases).set(fields).where(eq(releases.id, id)).returning();
  return rows[0] ?? null;
}

/** Deletes a release with its project links, environments and deploys. */
export async function deleteRelease(orm: Orm, id: number): Promise<void> {
  await orm.delete(releases).where(eq(releases.id, id));
}

/**
 * Releases of the organization (only those linked to `projectId` when
 * given), newest first, with their summaries.
 */
export async function listReleases(
  orm: Orm,
  organizationId: number,
  projectIds: number[] | null,
  limit: number,
  offset: number,
): Promise<ReleaseSummary[]> {
  if (projectIds !== null && projectIds.length === 0) return [];
  const conditions: SQL[] = [eq(releases.organizationId, organizationId)];
  if (projectIds !== null) conditions.push(linkedTo(projectIds));
  const rows = await orm
    .select()
    .from(releases)
    .where(and(...conditions))
    .orderBy(desc(releases.createdAt), desc(releases.id))
    .limit(limit)
    .offset(offset);
  return summarizeReleases(orm, organizationId, rows);
}

/** The summaries of `rows`: linked projects, new issues, first and last event, deploys. */
export async function summarizeReleases(
  orm: Orm,
  organizationId: number,
  rows: Release[],
): Promise<ReleaseSummary[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const links = await orm
    .select({
      releaseId: releaseProjects.releaseId,
      id: projects.id,
      slug: projects.slug,
      name: projects.name,
      platform: projects.platform,
      firstEvent: releaseProjects.firstEvent,
      lastEvent: releaseProjects.lastEvent,
    })
    .from(releaseProjects)
    .innerJoin(projects, eq(projects.id, releaseProjects.projectId))
    .where(inArray(releaseProjects.releaseId, ids))
    .orderBy(asc(projects.slug));
  const newGroups = await orm
    .select({
      projectId: issues.projectId,
      version: issues.firstRelease,
      count: sql<number>`count(*)::int`,
    })
    .from(issues)
    .innerJoin(projects, eq(projects.id, issues.projectId))
    .where(
      and(
        eq(projects.organizationId, organizationId),
        inArray(
          issues.firstRelease,
          rows.map((r) => r.version),
        ),
      ),
    )
    .groupBy(issues.projectId, issues.firstRelease);
  const deployRows = await orm
    .select()
    .from(deploys)
    .where(inArray(deploys.releaseId, ids))
    .orderBy(asc(deploys.dateFinished), asc(deploys.id));
  return rows.map((release) => {
    const mine = links.filter((l) => l.releaseId === release.id);
    const groups = (projectId: number) =>
      newGroups.find((g) => g.version === release.version && g.projectId === projectId)?.count ?? 0;
    const releaseDeploys = deployRows.filter((d) => d.releaseId === release.id);
    const times = (pick: (l: (typeof mine)[number]) => Date | null) =>
      mine.map(pick).filter((d): d is Date => d !== null);
    const firsts = times((l) => l.firstEvent);
    const lasts = times((l) => l.lastEvent);
    return {
      ...release,
      projects: mine.map((l) => ({
        id: l.id,
        slug: l.slug,
        name: l.name,
        platform: l.platform,
        newGroups: groups(l.id),
      })),
      firstEvent: firsts.length ? new Date(Math.min(...firsts.map(Number))) : null,
      lastEvent: lasts.length ? new Date(Math.max(...lasts.map(Number))) : null,
      newGroups: mine.reduce((sum, l) => sum + groups(l.id), 0),
      deployCount: releaseDeploys.length,
      lastDeploy: releaseDeploys.at(-1) ?? null,
    };
  });
}

export type NewDeploy = {
  environment: string;
  name: string | null;
  url: string | null;
  dateStarted: Date | null;
  dateFinished: Date | null;
};

export async function createDeploy(orm: Orm, releaseId: number, deploy: NewDeploy) {
  const rows = await orm
    .insert(deploys)
    .values({
      releaseId,
      environment: deploy.environment,
      name: deploy.name,
      url: deploy.url,
      dateStarted: deploy.dateStarted,
      ...(deploy.dateFinished ? { dateFinished: deploy.dateFinished } : {}),
    })
    .returning();
  return rows[0] as Deploy;
}

export async function listDeploys(orm: Orm, releaseId: number): Promise<Deploy[]> {
  return orm
    .select()
    .from(deploys)
    .where(eq(deploys.releaseId, releaseId))
    .orderBy(desc(deploys.dateFinished), desc(deploys.id));
}

/** How stale a release's last-seen time may get before the worker writes it again (ms). */
const SEEN_THROTTLE_MS = 60_000;

/**
 * Records that an event of `version` (and `environment`) reached the
 * project at `at`: creates the release and its project link the first
 * time (Sentry's event manager does the same), and moves first/last seen.
 * Reads first and writes only when something is new or a minute stale, so
 * that a busy release does not become a hot row. Runs outside the grouping
 * transaction: it is idempotent and only ever widens the times.
 */
export async function recordReleaseSeen(
  db: Queryable,
  projectId: number,
  version: string,
  environment: string | null,
  at: Date,
): Promise<void> {
  const env = environment ?? "";
  const seen = await db.query(
    `SELECT rp.first_event, rp.last_event, re.first_seen AS env_first, re.last_seen AS env_last
       FROM releases r
       JOIN projects p ON p.organization_id = r.organization_id AND p.id = $1
       JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = $1
       LEFT JOIN release_environments re
         ON re.release_id = r.id AND re.project_id = $1 AND re.environment = $3
      WHERE r.version = $2`,
    [projectId, version, env],
  );
  const row = seen.rows[0] as
    | {
        first_event: Date | null;
        last_event: Date | null;
        env_first: Date | null;
        env_last: Date | null;
      }
    | undefined;
  const fresh = (first: Date | null, last: Date | null) =>
    first !== null &&
    last !== null &&
    first <= at &&
    last.getTime() >= at.getTime() - SEEN_THROTTLE_MS;
  if (row && fresh(row.first_event, row.last_event) && fresh(row.env_first, row.env_last)) return;
  await db.query(
    `WITH release AS (
       INSERT INTO releases (organization_id, version)
       SELECT organization_id, $2 FROM projects WHERE id = $1
       ON CONFLICT (organization_id, version) DO UPDATE SET version = EXCLUDED.version
       RETURNING id
     ), link AS (
       INSERT INTO release_projects (release_id, project_id, first_event, last_event)
       SELECT id, $1, $4, $4 FROM release
       ON CONFLICT (release_id, project_id) DO UPDATE SET
         first_event = LEAST(release_projects.first_event, EXCLUDED.first_event),
         last_event = GREATEST(release_projects.last_event, EXCLUDED.last_event)
     )
     INSERT INTO release_environments (release_id, project_id, environment, first_seen, last_seen)
     SELECT id, $1, $3, $4, $4 FROM release
     ON CONFLICT (release_id, project_id, environment) DO UPDATE SET
       first_seen = LEAST(release_environments.first_seen, EXCLUDED.first_seen),
       last_seen = GREATEST(release_environments.last_seen, EXCLUDED.last_seen)`,
    [projectId, version, env, at],
  );
}
