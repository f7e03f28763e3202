import { eq } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { apiTokens } from "../schema.ts";

export type ApiToken = typeof apiTokens.$inferSelect;

/** Stores a token by its hash; the token itself is never stored. */
export async function createApiToken(
  orm: Orm,
  tokenHash: string,
  scopes: string[],
  label: string | null,
): Promise<ApiToken> {
  const rows = await orm.insert(apiTokens).values({ tokenHash, scopes, label }).returning();
  return rows[0] as ApiToken;
}

export async function findApiToken(orm: Orm, tokenHash: string): Promise<ApiToken | null> {
  const rows = await orm
    .select()
    .from(apiTokens)
    .where(eq(apiTokens.tokenHash, tokenHash))
    .limit(1);
  return rows[0] ?? null;
}
