import {
  countSignInFailure,
  findUserByEmail,
  listUserOrganizations,
  normalizeEmail,
  readSignInFailures,
  touchUserLogin,
  type User,
} from "@sluice/db";
import type { Services } from "../services.ts";
import { audit } from "./audit.ts";
import { dummyPasswordHash, PASSWORD_MAX_LENGTH, verifyPassword } from "./passwords.ts";

export type SignInResult =
  | { ok: true; user: User }
  | { ok: false; status: 401 | 429; message: string };

/** Longest address accepted at sign-in (characters, RFC 5321's path limit). */
const MAX_EMAIL_LENGTH = 254;

/**
 * Checks an email and password. Failed attempts are counted per account
 * and per client address in fixed windows in Postgres, so the bound holds
 * across every node; past `maxFailuresPerAccount` (or `…PerAddress`) in a
 * window the answer is 429 without checking the password. An unknown
 * address costs one argon2 verification like a wrong password, and both get
 * the same message.
 */
export async function signInWithPassword(
  services: Services,
  email: string,
  password: string,
  ipAddress: string | null,
): Promise<SignInResult> {
  const { orm } = services.db;
  const limits = services.config.accounts;
  const address = normalizeEmail(email).slice(0, MAX_EMAIL_LENGTH);
  const windowMs = limits.failureWindowS * 1000;
  const windowStart = new Date(Math.floor(Date.now() / windowMs) * windowMs);
  const subjects = [`account:${address}`, ...(ipAddress ? [`address:${ipAddress}`] : [])];
  const [accountFailures = 0, addressFailures = 0] = await readSignInFailures(
    orm,
    subjects,
    windowStart,
  );
  if (
    accountFailures >= limits.maxFailuresPerAccount ||
    addressFailures >= limits.maxFailuresPerAddress
  ) {
    const minutes = Math.ceil((windowStart.getTime() + windowMs - Date.now()) / 60_000);
    return {
      ok: false,
      status: 429,
      message: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
    };
  }
  const user = address ? await findUserByEmail(orm, address) : null;
  const usable = user?.isActive && user.passwordHash ? user.passwordHash : null;
  const matches =
    password.length <= PASSWORD_MAX_LENGTH &&
    (await verifyPassword(usable ?? (await dummyPasswordHash()), password)) &&
    usable !== null;
  if (!matches || !user) {
    await countSignInFailure(orm, subjects, windowStart);
    return { ok: false, status: 401, message: "The email or password is not correct." };
  }
  await touchUserLogin(orm, user.id);
  await auditSignIn(services, user, ipAddress, "password");
  return { ok: true, user };
}

/** Records a sign-in in the audit log of each organization the user belongs to. */
export async function auditSignIn(
  services: Services,
  user: User,
  ipAddress: string | null,
  method: "password" | "sso",
): Promise<void> {
  for (const org of await listUserOrganizations(services.db.orm, user.id)) {
    await audit(services, {
      organizationId: org.id,
      caller: { kind: "user", user, token: null, session: null },
      event: "user.sign_in",
      targetUserId: user.id,
      ipAddress,
      data: { method },
    });
  }
}
