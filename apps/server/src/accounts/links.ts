import { createUserLink, findUserLink, type UserLink, type UserLinkPurpose } from "@sluice/db";
import type { Services } from "../services.ts";
import { hashApiToken, newSecret } from "./auth-tokens.ts";

/** How long a one-time link works (ms): a week, as Sentry's invitations. */
const LINK_LIFETIME_MS = 7 * 24 * 3600 * 1000;

const PATHS: Record<UserLinkPurpose, string> = {
  set_password: "/auth/set-password/",
  accept_invite: "/accept/",
  first_owner: "/auth/setup/",
};

/**
 * Makes a one-time link (to set a password, or to accept an invitation);
 * returns its URL under `SLUICE_URL`. Only the secret's sha256 is stored.
 */
export async function createLink(
  services: Services,
  purpose: UserLinkPurpose,
  target: { userId?: number; memberId?: number },
): Promise<string> {
  const secret = newSecret();
  await createUserLink(services.db.orm, {
    secretHash: hashApiToken(secret),
    purpose,
    userId: target.userId ?? null,
    memberId: target.memberId ?? null,
    expiresAt: new Date(Date.now() + LINK_LIFETIME_MS),
  });
  return `${services.config.publicUrl}${PATHS[purpose]}${secret}/`;
}

/** The live link with this secret, or null (unknown, used or expired). */
export async function findLink(
  services: Services,
  purpose: UserLinkPurpose,
  secret: string,
): Promise<UserLink | null> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(secret)) return null;
  return findUserLink(services.db.orm, hashApiToken(secret), purpose);
}
