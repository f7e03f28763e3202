import { createHash, randomBytes } from "node:crypto";

/** Scopes an instance-admin token gets unless told otherwise (Sentry's scope names). */
export const DEFAULT_SCOPES = [
  "org:read",
  "project:read",
  "project:write",
  "project:releases",
  "event:read",
  "event:write",
];

/**
 * What an organization auth token may do: Sentry gives it `org:ci`, which
 * its permission classes read as "releases, deploys and uploads"; Sluice's
 * routes name those `project:releases`, and sentry-cli also reads the
 * organization and its projects (`org:read`, `project:read`). No events.
 */
export const ORGANIZATION_TOKEN_SCOPES = ["org:ci", "org:read", "project:read", "project:releases"];

/**
 * A new user auth token in the format sentry-cli recognizes: `sntryu_`
 * followed by 64 hex characters (sentry-cli src/utils/auth_token). Also the
 * format of instance-admin tokens.
 */
export function newApiToken(): string {
  return `sntryu_${randomBytes(32).toString("hex")}`;
}

/**
 * A new organization auth token as Sentry makes them
 * (getsentry/sentry `src/sentry/utils/security/orgauthtoken_token.py`):
 * `sntrys_` + base64 of `{"iat", "url", "region_url", "org"}` + `_` + a
 * 32-byte secret in base64 without padding. sentry-cli reads `url` and
 * `org` from it, so a CI job needs only the token.
 */
export function newOrganizationToken(organizationSlug: string, publicUrl: string): string {
  const payload = {
    iat: Date.now() / 1000,
    url: publicUrl,
    region_url: publicUrl,
    org: organizationSlug,
  };
  const encoded = Buffer.from(JSON.stringify(payload)).toString("base64");
  const secret = randomBytes(32).toString("base64").replace(/=+$/, "");
  return `sntrys_${encoded}_${secret}`;
}

/** What the database keeps of a token, a session or a link: its sha256, hex. */
export function hashApiToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A random secret for cookies and links: 32 bytes, base64url. */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}
