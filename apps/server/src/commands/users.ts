import {
  countUsers,
  ensureOrganization,
  findUserByEmail,
  setUserPassword,
  setUserSuperuser,
} from "@sluice/db";
import { createLink } from "../accounts/links.ts";
import { sendMail } from "../accounts/mailer.ts";
import { addUserToOrganization } from "../accounts/members.ts";
import { hashPassword, passwordProblem } from "../accounts/passwords.ts";
import type { OrganizationRole } from "../accounts/roles.ts";
import type { Services } from "../services.ts";

/** A refused command; the message is for the operator. */
export class CommandError extends Error {}

/**
 * `sluice users create`: the user (created when missing) becomes a member
 * of `orgSlug` with `role`. With a password (read from standard input by
 * the caller) it is set at once; else a one-time link to set it is
 * returned (and mailed when SMTP is configured). With `superuser`, the user
 * is also made an instance admin (`setSuperuserCommand`); without it an
 * existing user's status is left as it is.
 */
export async function createUserCommand(
  services: Services,
  options: {
    email: string;
    orgSlug: string;
    role: OrganizationRole;
    password: string | null;
    superuser?: boolean;
  },
): Promise<{ created: boolean; setPasswordLink: string | null; mailed: boolean }> {
  if (!/^[^@\s]+@[^@\s]+$/.test(options.email) || options.email.length > 254)
    throw new CommandError(`not an email address: ${options.email}`);
  if (options.password !== null) {
    const weak = passwordProblem(options.password);
    if (weak) throw new CommandError(weak);
  }
  const org = await ensureOrganization(services.db.orm, options.orgSlug, options.orgSlug);
  const { user, created } = await addUserToOrganization(
    services,
    org,
    options.email,
    options.role,
    null,
  );
  if (options.superuser) await setUserSuperuser(services.db.orm, user.email, true);
  if (options.password !== null) {
    await setUserPassword(services.db.orm, user.id, await hashPassword(options.password));
    return { created, setPasswordLink: null, mailed: false };
  }
  const link = await createLink(services, "set_password", { userId: user.id });
  const mailed = await sendMail(services, {
    to: user.email,
    subject: "Your Sluice account",
    text: `An account on Sluice was made for you (organization ${org.slug}, role ${options.role}).\n\nSet your password: ${link}\n\nThe link works once, for 7 days.`,
  });
  return { created, setPasswordLink: link, mailed };
}

/**
 * `sluice users set-superuser`: grants (or, with `grant` false, revokes)
 * instance administration (Sentry's `User.is_superuser`, migration 0012): a
 * signed-in superuser sees `/manage/fleet/` and `GET /api/0/internal/fleet/`.
 * Signed-in browsers see the change within `SESSION_CACHE_TTL_MS`.
 */
export async function setSuperuserCommand(
  services: Services,
  email: string,
  grant: boolean,
): Promise<{ email: string; isSuperuser: boolean }> {
  const user = await setUserSuperuser(services.db.orm, email, grant);
  if (!user) throw new CommandError(`no user with the address ${email}`);
  return { email: user.email, isSuperuser: user.isSuperuser };
}

/** `sluice users reset-password`: a one-time link to set a new password (mailed when SMTP is configured). */
export async function resetPasswordCommand(
  services: Services,
  email: string,
): Promise<{ link: string; mailed: boolean }> {
  const user = await findUserByEmail(services.db.orm, email);
  if (!user) throw new CommandError(`no user with the address ${email}`);
  const link = await createLink(services, "set_password", { userId: user.id });
  const mailed = await sendMail(services, {
    to: user.email,
    subject: "Reset your Sluice password",
    text: `Set a new password: ${link}\n\nThe link works once, for 7 days. If you did not ask for it, ignore this mail.`,
  });
  return { link, mailed };
}

/**
 * The link a newcomer opens to become the first owner (of organization
 * `sluice`, and a superuser of the instance), or null when the instance
 * has users already: `npm start` prints it next to the DSN.
 */
export async function firstOwnerLink(services: Services): Promise<string | null> {
  if ((await countUsers(services.db.orm)) > 0) return null;
  return createLink(services, "first_owner", {});
}
