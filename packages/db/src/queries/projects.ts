import { and, asc, eq, inArray, or } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { organizations, projects } from "../schema.ts";

export type Project = typeof projects.$inferSelect;
export type ProjectWithOrganization = Project & { organizationSlug: string };

const withOrganization = {
  id: projects.id,
  organizationId: projects.organizationId,
  slug: projects.slug,
  name: projects.name,
  platform: projects.platform,
  nextShortId: projects.nextShortId,
  createdAt: projects.createdAt,
  retentionDays: projects.retentionDays,
  secondaryGroupingExpiry: projects.secondaryGroupingExpiry,
  organizationSlug: organizations.slug,
};

/** Creates a project; `created` is false when the slug was taken and the existing one is returned. */
export async function ensureProject(
  orm: Orm,
  organizationId: number,
  slug: string,
  name: string,
): Promise<{ created: boolean; project: Project }> {
  const inserted = await orm
    .insert(projects)
    .values({ organizationId, slug, name })
    .onConflictDoNothing()
    .returning();
  if (inserted[0]) return { created: true, project: inserted[0] };
  const rows = await orm
    .select()
    .from(projects)
    .where(and(eq(projects.organizationId, organizationId), eq(projects.slug, slug)));
  if (!rows[0]) throw new Error(`project ${slug} vanished while being created`);
  return { created: false, project: rows[0] };
}

export async function findProject(
  orm: Orm,
  organizationSlug: string,
  projectSlug: string,
): Promise<ProjectWithOrganization | null> {
  const rows = await orm
    .select(withOrganization)
    .from(projects)
    .innerJoin(organizations, eq(organizations.id, projects.organizationId))
    .where(and(eq(organizations.slug, organizationSlug), eq(projects.slug, projectSlug)))
    .limit(1);
  return rows[0] ?? null;
}

export async function findProjectById(
  orm: Orm,
  id: number,
): Promise<ProjectWithOrganization | null> {
  const rows = await orm
    .select(withOrganization)
    .from(projects)
    .innerJoin(organizations, eq(organizations.id, projects.organizationId))
    .where(eq(projects.id, id))
    .limit(1);
  return rows[0] ?? null;
}

/** Projects of an organization by slug; `only` limits them to these ids (a member's teams). */
export async function listProjects(
  orm: Orm,
  organizationId: number,
  limit: number,
  offset: number,
  only: "all" | number[] = "all",
): Promise<Project[]> {
  if (only !== "all" && only.length === 0) return [];
  return orm
    .select()
    .from(projects)
    .where(
      and(
        eq(projects.organizationId, organizationId),
        only === "all" ? undefined : inArray(projects.id, only),
      ),
    )
    .orderBy(asc(projects.slug))
    .limit(limit)
    .offset(offset);
}

/** The organization's projects named by slug or numeric id in `names`. */
export async function findProjectsBySlugOrId(
  orm: Orm,
  organizationId: number,
  names: string[],
): Promise<Project[]> {
  if (names.length === 0) return [];
  const ids = names.filter((n) => /^\d{1,15}$/.test(n)).map(Number);
  return orm
    .select()
    .from(projects)
    .where(
      and(
        eq(projects.organizationId, organizationId),
        or(inArray(projects.slug, names), ids.length > 0 ? inArray(projects.id, ids) : undefined),
      ),
    );
}
