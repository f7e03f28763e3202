import { and, eq, gt, isNull, sql } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { userIdentities, userLinks, users } from "../schema.ts";

export type User = typeof users.$inferSelect;
export type UserLink = typeof userLinks.$inferSelect;
/** What a one-time link is for. */
export type UserLinkPurpose = "set_password" | "accept_invite" | "first_owner";

/** Lower-cases and trims an address: one account per address however it is typed. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** The user with this address (any case), or null. */
export async function findUserByEmail(orm: Orm, email: string): Promise<User | null> {
  const rows = await orm
    .select()
    .from(users)
    .where(eq(users.email, normalizeEmail(email)))
    .limit(1);
  return rows[0] ?? null;
}

export async function findUserById(orm: Orm, id: number): Promise<User | null> {
  const rows = await orm.select().from(users).where(eq(users.id, id)).limit(1);
  return rows[0] ?? null;
}

/** Returns the user with this address, creating it (without a password) when missing. */
export async function ensureUser(
  orm: Orm,
  email: string,
  name: string | null = null,
): Promise<{ user: User; created: boolean }> {
  const inserted = await orm
    .insert(users)
    .values({ email: normalizeEmail(email), name })
    .onConflictDoNothing()
    .returning();
  if (inserted[0]) return { user: inserted[0], created: true };
  const found = await findUserByEmail(orm, email);
  if (!found) throw new Error("user vanished while being created");
  return { user: found, created: false };
}

/** Stores a password hash (PHC string) for the user. */
export async function setUserPassword(orm: Orm, userId: number, passwordHash: string) {
  await orm.update(users).set({ passwordHash }).where(eq(users.id, userId));
}

/**
 * Grants (`true`) or revokes (`false`) instance administration, Sentry's
 * `User.is_superuser` (migration 0012). Returns the user, or null when no
 * user has this address. Sessions see the change within their cache time.
 */
export async function setUserSuperuser(
  orm: Orm,
  email: string,
  isSuperuser: boolean,
): Promise<User | null> {
  const rows = await orm
    .update(users)
    .set({ isSuperuser })
    .where(eq(users.email, normalizeEmail(email)))
    .returning();
  return rows[0] ?? null;
}

export async function touchUserLogin(orm: Orm, userId: number) {
  await orm.update(users).set({ lastLoginAt: new Date() }).where(eq(users.id, userId));
}

/** Stores a one-time link by the sha256 of its secret. */
export async function createUserLink(
  orm: Orm,
  link: {
    secretHash: string;
    purpose: UserLinkPurpose;
    userId?: number | null;
    memberId?: number | null;
    expiresAt: Date;
  },
): Promise<void> {
  await orm.insert(userLinks).values(link);
}

/** The unexpired, unused link with this secret hash and purpose, or null. */
export async function findUserLink(
  orm: Orm,
  secretHash: string,
  purpose: UserLinkPurpose,
): Promise<UserLink | null> {
  const rows = await orm
    .select()
    .from(userLinks)
    .where(
      and(
        eq(userLinks.secretHash, secretHash),
        eq(userLinks.purpose, purpose),
        isNull(userLinks.usedAt),
        gt(userLinks.expiresAt, new Date()),
      ),
    )
    .limit(1);
  return rows[0] ?? null;
}

/** Marks a link used; false when it was used (or expired) already: a link works once. */
export async function useUserLink(orm: Orm, secretHash: string): Promise<boolean> {
  const rows = await orm
    .update(userLinks)
    .set({ usedAt: new Date() })
    .where(
      and(
        eq(userLinks.secretHash, secretHash),
        isNull(userLinks.usedAt),
        gt(userLinks.expiresAt, new Date()),
      ),
    )
    .returning({ secretHash: userLinks.secretHash });
  return rows.length === 1;
}

/** The user linked to an OpenID Connect account, or null. */
export async function findUserByIdentity(
  orm: Orm,
  issuer: string,
  subject: string,
): Promise<User | null> {
  const rows = await orm
    .select({ user: users })
    .from(userIdentities)
    .innerJoin(users, eq(users.id, userIdentities.userId))
    .where(and(eq(userIdentities.issuer, issuer), eq(userIdentities.subject, subject)))
    .limit(1);
  return rows[0]?.user ?? null;
}

export async function linkUserIdentity(
  orm: Orm,
  issuer: string,
  subject: string,
  userId: number,
): Promise<void> {
  await orm.insert(userIdentities).values({ issuer, subject, userId }).onConflictDoNothing();
}

/** Number of users; an empty instance prints a first-owner link at start. */
export async function countUsers(orm: Orm): Promise<number> {
  const rows = await orm.select({ n: sql<string>`count(*)` }).from(users);
  return Number(rows[0]?.n ?? 0);
}
