import { createApiToken, ensureOrganization } from "@sluice/db";
import {
  hashApiToken,
  newApiToken,
  newOrganizationToken,
  ORGANIZATION_TOKEN_SCOPES,
} from "../src/accounts/auth-tokens.ts";
import type { OrganizationRole } from "../src/accounts/roles.ts";
import { createUserCommand } from "../src/commands/users.ts";
import type { TestSluice } from "./harness.ts";

/** A signed-in browser's cookie header and CSRF token. */
export type TestSession = { cookie: string; csrf: string };

/** Creates a user with a password as a member of `org` (created when missing). */
export async function createTestUser(
  t: TestSluice,
  email: string,
  org = "sluice",
  role: OrganizationRole = "member",
  password = "correct horse battery",
): Promise<void> {
  await createUserCommand(t.services, { email, orgSlug: org, role, password });
}

/** Signs in through the sign-in form; throws unless it succeeds. */
export async function signInForm(
  t: TestSluice,
  email: string,
  password = "correct horse battery",
): Promise<TestSession> {
  const response = await fetch(`${t.url}/auth/login/`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password }),
  });
  if (response.status !== 303) throw new Error(`sign-in answered ${response.status}`);
  const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const secret = decodeURIComponent(cookie.split("=")[1] ?? "");
  const { rows } = await t.sql.query(
    "SELECT csrf_token FROM user_sessions WHERE secret_hash = $1",
    [hashApiToken(secret)],
  );
  return { cookie, csrf: rows[0].csrf_token };
}

/** An organization auth token (`sntrys_`) of `orgSlug` (created when missing). */
export async function organizationToken(t: TestSluice, orgSlug: string): Promise<string> {
  const org = await ensureOrganization(t.services.db.orm, orgSlug, orgSlug);
  const token = newOrganizationToken(org.slug, t.url);
  await createApiToken(t.services.db.orm, hashApiToken(token), ORGANIZATION_TOKEN_SCOPES, "ci", {
    organizationId: org.id,
  });
  return token;
}

/** A user auth token (`sntryu_`) of the user with this address, with `scopes`. */
export async function userToken(t: TestSluice, email: string, scopes: string[]): Promise<string> {
  const { rows } = await t.sql.query("SELECT id FROM users WHERE email = $1", [email]);
  const token = newApiToken();
  await createApiToken(t.services.db.orm, hashApiToken(token), scopes, "user", {
    userId: rows[0].id,
  });
  return token;
}
