import { and, desc, eq, isNull, lt, or } from "drizzle-orm";
import type { Orm, Queryable } from "../database.ts";
import { apiTokens } from "../schema.ts";

export type ApiToken = typeof apiTokens.$inferSelect;

/**
 * Stores a token by its hash; the token itself is never stored. Without
 * `organizationId` and `userId` it is an instance-admin token (what 0.1.0
 * and 0.2.0 made).
 */
export async function createApiToken(
  orm: Orm,
  tokenHash: string,
  scopes: string[],
  label: string | null,
  owner: {
    organizationId?: number | null;
    userId?: number | null;
    tokenLastCharacters?: string | null;
  } = {},
): Promise<ApiToken> {
  const rows = await orm
    .insert(apiTokens)
    .values({ tokenHash, scopes, label, ...owner })
    .returning();
  return rows[0] as ApiToken;
}

/** The unrevoked token with this hash, or null. */
export async function findApiToken(orm: Orm, tokenHash: string): Promise<ApiToken | null> {
  const rows = await orm
    .select()
    .from(apiTokens)
    .where(and(eq(apiTokens.tokenHash, tokenHash), isNull(apiTokens.revokedAt)))
    .limit(1);
  return rows[0] ?? null;
}

/** Sets `last_used_at` unless it was set within `throttleMs`: at most one write per token per window. */
export async function touchApiToken(orm: Orm, tokenId: number, throttleMs: number) {
  const now = new Date();
  await orm
    .update(apiTokens)
    .set({ lastUsedAt: now })
    .where(
      and(
        eq(apiTokens.id, tokenId),
        or(
          isNull(apiTokens.lastUsedAt),
          lt(apiTokens.lastUsedAt, new Date(now.getTime() - throttleMs)),
        ),
      ),
    );
}

/** Unrevoked tokens of a user or of an organization, newest first (at most 1,000). */
export async function listApiTokens(
  orm: Orm,
  owner: { userId: number } | { organizationId: number },
): Promise<ApiToken[]> {
  return orm
    .select()
    .from(apiTokens)
    .where(
      and(
        "userId" in owner
          ? eq(apiTokens.userId, owner.userId)
          : eq(apiTokens.organizationId, owner.organizationId),
        isNull(apiTokens.revokedAt),
      ),
    )
    .orderBy(desc(apiTokens.id))
    .limit(1000);
}

/** Revokes a token of that owner; false when there is none. */
export async function revokeApiToken(
  orm: Orm,
  tokenId: number,
  owner: { userId: number } | { organizationId: number },
): Promise<boolean> {
  const rows = await orm
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(
      and(
        eq(apiTokens.id, tokenId),
        "userId" in owner
          ? eq(apiTokens.userId, owner.userId)
          : eq(apiTokens.organizationId, owner.organizationId),
        isNull(apiTokens.revokedAt),
      ),
    )
    .returning({ id: apiTokens.id });
  return rows.length === 1;
}

/** Every unrevoked token with its owner's names, for `sluice tokens list` (at most 10,000, newest first). */
export async function listAllApiTokens(db: Queryable) {
  const { rows } = await db.query(
    `SELECT t.id, t.label, t.scopes, t.created_at, t.last_used_at, t.token_last_characters,
            o.slug AS organization, u.email AS user_email
       FROM api_tokens t
       LEFT JOIN organizations o ON o.id = t.organization_id
       LEFT JOIN users u ON u.id = t.user_id
      WHERE t.revoked_at IS NULL
      ORDER BY t.id DESC
      LIMIT 10000`,
  );
  return rows.map((r) => ({
    id: String(r.id),
    kind:
      r.user_email !== null
        ? ("user" as const)
        : r.organization !== null
          ? ("organization" as const)
          : ("instance-admin" as const),
    owner: (r.user_email ?? r.organization ?? null) as string | null,
    label: r.label as string | null,
    scopes: r.scopes as string[],
    createdAt: r.created_at as Date,
    lastUsedAt: r.last_used_at as Date | null,
  }));
}
