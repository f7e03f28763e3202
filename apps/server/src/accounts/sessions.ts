import {
  createUserSession,
  findLiveSession,
  revokeUserSession,
  touchUserSession,
  type User,
  type UserSession,
} from "@sluice/db";
import { LRUCache } from "lru-cache";
import type { Services } from "../services.ts";
import { hashApiToken, newSecret } from "./auth-tokens.ts";

/** Name of the session cookie. */
export const SESSION_COOKIE = "sluice_session";

/**
 * How long a node trusts a session it looked up (ms): a sign-out or a
 * revocation on any node takes effect on every node within this time.
 */
export const SESSION_CACHE_TTL_MS = 2_000;
/** Sessions a node keeps looked up (entries). */
const SESSION_CACHE_ENTRIES = 10_000;
/** The idle clock of a session moves at most once in this time (ms): not a write per request. */
const TOUCH_EVERY_MS = 60_000;

type Live = { session: UserSession; user: User };
const cache = new LRUCache<string, Live | "none">({
  max: SESSION_CACHE_ENTRIES,
  ttl: SESSION_CACHE_TTL_MS,
});

/**
 * Starts a session for `user`; returns the cookie secret (only its sha256
 * is stored) and the row. The absolute expiry is `sessionMaxAgeS` from now.
 */
export async function startSession(
  services: Services,
  user: User,
  client: { userAgent: string | null; ipAddress: string | null },
): Promise<{ secret: string; session: UserSession }> {
  const secret = newSecret();
  const session = await createUserSession(services.db.orm, {
    secretHash: hashApiToken(secret),
    userId: user.id,
    csrfToken: newSecret(),
    expiresAt: new Date(Date.now() + services.config.accounts.sessionMaxAgeS * 1000),
    userAgent: client.userAgent?.slice(0, 500) ?? null,
    ipAddress: client.ipAddress,
  });
  return { secret, session };
}

/**
 * The live session for a cookie secret, or null: revoked, expired, idle
 * past `sessionIdleTimeoutS`, or a disabled user. Looked up in Postgres (any
 * node serves any session) and cached for SESSION_CACHE_TTL_MS.
 */
export async function resolveSession(services: Services, secret: string): Promise<Live | null> {
  if (secret.length === 0 || secret.length > 100) return null;
  const key = hashApiToken(secret);
  let live = cache.get(key);
  if (live === undefined) {
    const idleMs = services.config.accounts.sessionIdleTimeoutS * 1000;
    live = (await findLiveSession(services.db.orm, key, idleMs)) ?? "none";
    cache.set(key, live);
    if (live !== "none" && Date.now() - live.session.lastSeenAt.getTime() > TOUCH_EVERY_MS) {
      await touchUserSession(services.db.orm, live.session.id);
    }
  }
  return live === "none" ? null : live;
}

/** Ends a session on every node (within SESSION_CACHE_TTL_MS; at once on this one). */
export async function endSession(services: Services, secret: string): Promise<void> {
  const key = hashApiToken(secret);
  const live = await resolveSession(services, secret);
  if (live) await revokeUserSession(services.db.orm, live.session.id);
  cache.delete(key);
}
