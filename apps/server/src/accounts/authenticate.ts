import { findApiToken, findUserById, touchApiToken } from "@sluice/db";
import type { Services } from "../services.ts";
import type { Caller } from "./access.ts";
import { hashApiToken } from "./auth-tokens.ts";

/** `last_used_at` of a token is written at most once in this time (ms). */
const TOKEN_TOUCH_EVERY_MS = 60_000;
/** Longest bearer token looked up (characters); Sentry's tokens are under 300. */
const MAX_TOKEN_LENGTH = 1_000;

/**
 * The caller a bearer token names, or null for an unknown, revoked or
 * malformed one. Looked up in Postgres on every request, so a revocation
 * takes effect at once on every node; `last_used_at` is throttled.
 */
export async function callerForToken(services: Services, token: string): Promise<Caller | null> {
  if (token.length > MAX_TOKEN_LENGTH) return null;
  const { orm } = services.db;
  const row = await findApiToken(orm, hashApiToken(token));
  if (!row) return null;
  await touchApiToken(orm, row.id, TOKEN_TOUCH_EVERY_MS);
  if (row.userId !== null) {
    const user = await findUserById(orm, row.userId);
    if (!user?.isActive) return null;
    return { kind: "user", user, token: row, session: null };
  }
  if (row.organizationId !== null)
    return { kind: "organization-token", token: row, organizationId: row.organizationId };
  return { kind: "instance-admin", token: row };
}
