import { createHash, randomBytes } from "node:crypto";

/** Scopes a token gets unless told otherwise (Sentry's scope names). */
export const DEFAULT_SCOPES = [
  "org:read",
  "project:read",
  "project:write",
  "project:releases",
  "event:read",
  "event:write",
];

/**
 * A new API token in the user-token format sentry-cli recognizes: `sntryu_`
 * followed by 64 hex characters (sentry-cli src/utils/auth_token).
 */
export function newApiToken(): string {
  return `sntryu_${randomBytes(32).toString("hex")}`;
}

/** What the database keeps of a token: its sha256, hex. */
export function hashApiToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
