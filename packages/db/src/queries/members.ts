import { and, asc, eq, inArray, isNotNull, sql } from "drizzle-orm";
import type { Orm } from "../database.ts";
import {
  organizationMembers,
  organizations,
  projects,
  projectTeams,
  teamMembers,
  teams,
  users,
} from "../schema.ts";
import type { Organization } from "./organizations.ts";
import { normalizeEmail } from "./users.ts";

export type OrganizationMember = typeof organizationMembers.$inferSelect;
export type Team = typeof teams.$inferSelect;
/** A member with its user's name, for listings. */
export type MemberWithUser = OrganizationMember & { userName: string | null };

/** A member's columns with its user's name (null for an invitation). */
const memberWithUser = {
  id: organizationMembers.id,
  organizationId: organizationMembers.organizationId,
  userId: organizationMembers.userId,
  email: organizationMembers.email,
  role: organizationMembers.role,
  createdAt: organizationMembers.createdAt,
  userName: users.name,
};

/** The membership of a user in an organization, or null. */
export async function findMembership(
  orm: Orm,
  organizationId: number,
  userId: number,
): Promise<OrganizationMember | null> {
  const rows = await orm
    .select()
    .from(organizationMembers)
    .where(
      and(
        eq(organizationMembers.organizationId, organizationId),
        eq(organizationMembers.userId, userId),
      ),
    )
    .limit(1);
  return rows[0] ?? null;
}

/** The organizations a user is a member of, by slug. */
export async function listUserOrganizations(orm: Orm, userId: number): Promise<Organization[]> {
  const rows = await orm
    .select({ organization: organizations })
    .from(organizationMembers)
    .innerJoin(organizations, eq(organizations.id, organizationMembers.organizationId))
    .where(eq(organizationMembers.userId, userId))
    .orderBy(asc(organizations.slug))
    .limit(1000);
  return rows.map((r) => r.organization);
}

/**
 * Adds a member (a user, or an invitation to an address when `userId` is
 * null); an existing membership of that address keeps its row and gets the
 * role. Returns the row.
 */
export async function upsertMember(
  orm: Orm,
  organizationId: number,
  email: string,
  role: string,
  userId: number | null,
): Promise<OrganizationMember> {
  const rows = await orm
    .insert(organizationMembers)
    .values({ organizationId, email: normalizeEmail(email), role, userId })
    .onConflictDoUpdate({
      target: [organizationMembers.organizationId, organizationMembers.email],
      set: { role, userId: sql`coalesce(excluded.user_id, ${organizationMembers.userId})` },
    })
    .returning();
  return rows[0] as OrganizationMember;
}

/** Members of an organization (invitations included), oldest first. */
export async function listMembers(
  orm: Orm,
  organizationId: number,
  limit: number,
  offset: number,
): Promise<MemberWithUser[]> {
  return orm
    .select(memberWithUser)
    .from(organizationMembers)
    .leftJoin(users, eq(users.id, organizationMembers.userId))
    .where(eq(organizationMembers.organizationId, organizationId))
    .orderBy(asc(organizationMembers.id))
    .limit(limit)
    .offset(offset);
}

export async function findMember(
  orm: Orm,
  organizationId: number,
  memberId: number,
): Promise<MemberWithUser | null> {
  const rows = await orm
    .select(memberWithUser)
    .from(organizationMembers)
    .leftJoin(users, eq(users.id, organizationMembers.userId))
    .where(
      and(
        eq(organizationMembers.organizationId, organizationId),
        eq(organizationMembers.id, memberId),
      ),
    )
    .limit(1);
  return rows[0] ?? null;
}

export async function setMemberRole(orm: Orm, memberId: number, role: string): Promise<void> {
  await orm.update(organizationMembers).set({ role }).where(eq(organizationMembers.id, memberId));
}

/** Binds an invitation to the user who accepted it. */
export async function attachMemberUser(orm: Orm, memberId: number, userId: number) {
  await orm.update(organizationMembers).set({ userId }).where(eq(organizationMembers.id, memberId));
}

/** Removes a member and its team memberships. */
export async function deleteMember(orm: Orm, memberId: number): Promise<void> {
  await orm.transaction(async (tx) => {
    await tx.delete(teamMembers).where(eq(teamMembers.memberId, memberId));
    await tx.delete(organizationMembers).where(eq(organizationMembers.id, memberId));
  });
}

/** How many members with a user hold `role` (an organization keeps one owner at least). */
export async function countMembersWithRole(
  orm: Orm,
  organizationId: number,
  role: string,
): Promise<number> {
  const rows = await orm
    .select({ n: sql<string>`count(*)` })
    .from(organizationMembers)
    .where(
      and(
        eq(organizationMembers.organizationId, organizationId),
        eq(organizationMembers.role, role),
        isNotNull(organizationMembers.userId),
      ),
    );
  return Number(rows[0]?.n ?? 0);
}

/** Returns the team with this slug, creating it when missing. */
export async function ensureTeam(
  orm: Orm,
  organizationId: number,
  slug: string,
  name: string,
): Promise<Team> {
  await orm.insert(teams).values({ organizationId, slug, name }).onConflictDoNothing();
  const rows = await orm
    .select()
    .from(teams)
    .where(and(eq(teams.organizationId, organizationId), eq(teams.slug, slug)))
    .limit(1);
  if (!rows[0]) throw new Error("team vanished while being created");
  return rows[0];
}

export async function findTeam(
  orm: Orm,
  organizationId: number,
  slug: string,
): Promise<Team | null> {
  const rows = await orm
    .select()
    .from(teams)
    .where(and(eq(teams.organizationId, organizationId), eq(teams.slug, slug)))
    .limit(1);
  return rows[0] ?? null;
}

export async function listTeams(orm: Orm, organizationId: number): Promise<Team[]> {
  return orm
    .select()
    .from(teams)
    .where(eq(teams.organizationId, organizationId))
    .orderBy(asc(teams.slug))
    .limit(1000);
}

export async function addTeamMember(orm: Orm, teamId: number, memberId: number) {
  await orm.insert(teamMembers).values({ teamId, memberId }).onConflictDoNothing();
}

export async function removeTeamMember(orm: Orm, teamId: number, memberId: number) {
  await orm
    .delete(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.memberId, memberId)));
}

export async function addProjectTeam(orm: Orm, projectId: number, teamId: number) {
  await orm.insert(projectTeams).values({ projectId, teamId }).onConflictDoNothing();
}

export async function removeProjectTeam(orm: Orm, projectId: number, teamId: number) {
  await orm
    .delete(projectTeams)
    .where(and(eq(projectTeams.projectId, projectId), eq(projectTeams.teamId, teamId)));
}

/** Ids of the projects a member reaches through its teams. */
export async function listMemberProjectIds(orm: Orm, memberId: number): Promise<number[]> {
  const rows = await orm
    .selectDistinct({ projectId: projectTeams.projectId })
    .from(teamMembers)
    .innerJoin(projectTeams, eq(projectTeams.teamId, teamMembers.teamId))
    .where(eq(teamMembers.memberId, memberId));
  return rows.map((r) => r.projectId);
}

/** Slugs of the teams of each project in `projectIds`, for serializers. */
export async function listProjectTeamSlugs(
  orm: Orm,
  projectIds: number[],
): Promise<Map<number, string[]>> {
  const map = new Map<number, string[]>();
  if (projectIds.length === 0) return map;
  const rows = await orm
    .select({ projectId: projectTeams.projectId, slug: teams.slug })
    .from(projectTeams)
    .innerJoin(teams, eq(teams.id, projectTeams.teamId))
    .innerJoin(projects, eq(projects.id, projectTeams.projectId))
    .where(inArray(projectTeams.projectId, projectIds));
  for (const row of rows) map.set(row.projectId, [...(map.get(row.projectId) ?? []), row.slug]);
  return map;
}

/** Turns Open Membership on or off (Sentry's `openMembership`). */
export async function setOpenMembership(orm: Orm, organizationId: number, open: boolean) {
  await orm
    .update(organizations)
    .set({ openMembership: open })
    .where(eq(organizations.id, organizationId));
}

/** The member (or invitation) of `email` in an organization, or null. */
export async function findMemberByEmail(
  orm: Orm,
  organizationId: number,
  email: string,
): Promise<OrganizationMember | null> {
  const rows = await orm
    .select()
    .from(organizationMembers)
    .where(
      and(
        eq(organizationMembers.organizationId, organizationId),
        eq(organizationMembers.email, normalizeEmail(email)),
      ),
    )
    .limit(1);
  return rows[0] ?? null;
}

export async function findMemberById(
  orm: Orm,
  memberId: number,
): Promise<OrganizationMember | null> {
  const rows = await orm
    .select()
    .from(organizationMembers)
    .where(eq(organizationMembers.id, memberId))
    .limit(1);
  return rows[0] ?? null;
}
