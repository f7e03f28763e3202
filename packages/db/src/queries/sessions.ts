import { and, eq, gt, isNull, lt, or, sql } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { oidcLogins, signInFailures, userSessions, users } from "../schema.ts";
import type { User } from "./users.ts";

export type UserSession = typeof userSessions.$inferSelect;

/** Stores a session by the sha256 of its cookie secret. */
export async function createUserSession(
  orm: Orm,
  session: {
    secretHash: string;
    userId: number;
    csrfToken: string;
    expiresAt: Date;
    userAgent: string | null;
    ipAddress: string | null;
  },
): Promise<UserSession> {
  const rows = await orm.insert(userSessions).values(session).returning();
  return rows[0] as UserSession;
}

/**
 * The live session with this secret hash and its (active) user: not
 * revoked, before its absolute expiry, and seen within `idleMs`.
 */
export async function findLiveSession(
  orm: Orm,
  secretHash: string,
  idleMs: number,
): Promise<{ session: UserSession; user: User } | null> {
  const now = new Date();
  const rows = await orm
    .select({ session: userSessions, user: users })
    .from(userSessions)
    .innerJoin(users, eq(users.id, userSessions.userId))
    .where(
      and(
        eq(userSessions.secretHash, secretHash),
        isNull(userSessions.revokedAt),
        gt(userSessions.expiresAt, now),
        gt(userSessions.lastSeenAt, new Date(now.getTime() - idleMs)),
        eq(users.isActive, true),
      ),
    )
    .limit(1);
  return rows[0] ?? null;
}

/** Moves a session's idle clock; callers throttle it (not a write per request). */
export async function touchUserSession(orm: Orm, sessionId: number): Promise<void> {
  await orm
    .update(userSessions)
    .set({ lastSeenAt: new Date() })
    .where(eq(userSessions.id, sessionId));
}

export async function revokeUserSession(orm: Orm, sessionId: number): Promise<void> {
  await orm
    .update(userSessions)
    .set({ revokedAt: new Date() })
    .where(and(eq(userSessions.id, sessionId), isNull(userSessions.revokedAt)));
}

/** Revokes every session of a user (password change, removal); returns how many. */
export async function revokeUserSessions(orm: Orm, userId: number): Promise<number> {
  const rows = await orm
    .update(userSessions)
    .set({ revokedAt: new Date() })
    .where(and(eq(userSessions.userId, userId), isNull(userSessions.revokedAt)))
    .returning({ id: userSessions.id });
  return rows.length;
}

/**
 * Counts one failed sign-in for each subject (an account, an address) in
 * the fixed window starting at `windowStart`; returns the counts after it.
 */
export async function countSignInFailure(
  orm: Orm,
  subjects: string[],
  windowStart: Date,
): Promise<number[]> {
  const counts: number[] = [];
  for (const subject of subjects) {
    const rows = await orm
      .insert(signInFailures)
      .values({ subject, windowStart, failures: 1 })
      .onConflictDoUpdate({
        target: [signInFailures.subject, signInFailures.windowStart],
        set: { failures: sql`${signInFailures.failures} + 1` },
      })
      .returning({ failures: signInFailures.failures });
    counts.push(rows[0]?.failures ?? 1);
  }
  return counts;
}

/** Failed sign-ins of each subject in the window starting at `windowStart`. */
export async function readSignInFailures(
  orm: Orm,
  subjects: string[],
  windowStart: Date,
): Promise<number[]> {
  const counts: number[] = [];
  for (const subject of subjects) {
    const rows = await orm
      .select({ failures: signInFailures.failures })
      .from(signInFailures)
      .where(and(eq(signInFailures.subject, subject), eq(signInFailures.windowStart, windowStart)));
    counts.push(rows[0]?.failures ?? 0);
  }
  return counts;
}

/** Deletes failure windows and abandoned OIDC sign-ins older than `before`. */
export async function pruneSignInState(orm: Orm, before: Date): Promise<void> {
  await orm.delete(signInFailures).where(lt(signInFailures.windowStart, before));
  await orm.delete(oidcLogins).where(lt(oidcLogins.createdAt, before));
  await orm
    .delete(userSessions)
    .where(or(lt(userSessions.expiresAt, before), lt(userSessions.revokedAt, before)));
}

export async function createOidcLogin(
  orm: Orm,
  login: { state: string; nonce: string; codeVerifier: string; nextPath: string },
): Promise<void> {
  await orm.insert(oidcLogins).values(login);
}

/** Takes (reads and deletes) the OIDC sign-in in flight with this state, if younger than `maxAgeMs`. */
export async function takeOidcLogin(orm: Orm, state: string, maxAgeMs: number) {
  const rows = await orm
    .delete(oidcLogins)
    .where(
      and(eq(oidcLogins.state, state), gt(oidcLogins.createdAt, new Date(Date.now() - maxAgeMs))),
    )
    .returning();
  return rows[0] ?? null;
}
