import { asc, eq } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { organizations } from "../schema.ts";

export type Organization = typeof organizations.$inferSelect;

/** Returns the organization with this slug, creating it when missing. */
export async function ensureOrganization(
  orm: Orm,
  slug: string,
  name: string,
): Promise<Organization> {
  await orm.insert(organizations).values({ slug, name }).onConflictDoNothing();
  const found = await findOrganization(orm, slug);
  if (!found) throw new Error(`organization ${slug} vanished while being created`);
  return found;
}

export async function findOrganization(orm: Orm, slug: string): Promise<Organization | null> {
  const rows = await orm.select().from(organizations).where(eq(organizations.slug, slug)).limit(1);
  return rows[0] ?? null;
}

export async function listOrganizations(
  orm: Orm,
  limit: number,
  offset: number,
): Promise<Organization[]> {
  return orm
    .select()
    .from(organizations)
    .orderBy(asc(organizations.slug))
    .limit(limit)
    .offset(offset);
}

export async function findOrganizationById(orm: Orm, id: number): Promise<Organization | null> {
  const rows = await orm.select().from(organizations).where(eq(organizations.id, id)).limit(1);
  return rows[0] ?? null;
}
