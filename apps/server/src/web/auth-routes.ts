import {
  attachMemberUser,
  countUsers,
  ensureOrganization,
  ensureUser,
  findMemberById,
  findOrganizationById,
  findUserByEmail,
  findUserById,
  listUserOrganizations,
  revokeUserSessions,
  setUserPassword,
  setUserSuperuser,
  type User,
  useUserLink,
} from "@sluice/db";
import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import { audit } from "../accounts/audit.ts";
import { hashApiToken } from "../accounts/auth-tokens.ts";
import { clientAddress } from "../accounts/client-address.ts";
import { findLink } from "../accounts/links.ts";
import { addUserToOrganization } from "../accounts/members.ts";
import { finishOidcSignIn, OidcError, startOidcSignIn } from "../accounts/oidc.ts";
import { hashPassword, PASSWORD_MIN_LENGTH, passwordProblem } from "../accounts/passwords.ts";
import {
  csrfProblem,
  requireCsrf,
  sessionAuth,
  type WebEnv,
} from "../accounts/session-middleware.ts";
import { endSession, SESSION_COOKIE, startSession } from "../accounts/sessions.ts";
import { signInWithPassword } from "../accounts/sign-in.ts";
import type { Services } from "../services.ts";
import { authPage } from "./auth-page.ts";
import { safeNext } from "./safe-next.ts";

/** Where a user lands after signing in without a `next`: their first organization's issues. */
async function landing(services: Services, user: User): Promise<string> {
  const [org] = await listUserOrganizations(services.db.orm, user.id);
  return org ? `/organizations/${org.slug}/issues/` : "/settings/account/";
}

/** Starts a session and sets its cookie (HttpOnly, SameSite=Lax, Secure on https). */
async function signIn(c: Context<WebEnv>, user: User): Promise<void> {
  const services = c.get("services");
  const { secret } = await startSession(services, user, {
    userAgent: c.req.header("user-agent") ?? null,
    ipAddress: clientAddress(c, services.config.accounts.trustForwardedFor),
  });
  setCookie(c, SESSION_COOKIE, secret, {
    httpOnly: true,
    sameSite: "Lax",
    secure: services.config.publicUrl.startsWith("https:"),
    path: "/",
    maxAge: services.config.accounts.sessionMaxAgeS,
  });
}

function loginForm(next: string | null, email: string, ssoName: string | null) {
  const action = next ? `/auth/login/?next=${encodeURIComponent(next)}` : "/auth/login/";
  const sso = next ? `/auth/sso/?next=${encodeURIComponent(next)}` : "/auth/sso/";
  return html`<form method="post" action="${action}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${email}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${ssoName ? html`<p><a class="button secondary" href="${sso}">Sign in with ${ssoName}</a></p>` : ""}
<p><a href="/account/recover/">Forgot your password?</a></p>`;
}

function setupForm(action: string, email: string) {
  return html`<form method="post" action="${action}">
<p>This account will be the owner of organization <strong>sluice</strong> and a superuser: the administrator of this Sluice instance.</p>
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${email}">
${newPasswordField("Password")}
<button type="submit">Create account</button>
</form>`;
}

/** A new password's field, with its rule said next to it (not only after a refusal). */
const newPasswordField = (label: string) =>
  html`<label for="password">${label}</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${PASSWORD_MIN_LENGTH}" aria-describedby="password-hint">
<p id="password-hint" class="hint">At least ${PASSWORD_MIN_LENGTH} characters.</p>`;

function passwordForm(action: string, email: string) {
  return html`<form method="post" action="${action}">
<p>Account: <strong>${email}</strong></p>
${newPasswordField("New password")}
<button type="submit">Set password</button>
</form>`;
}

/** What the invitation page tells: who is invited, where, as what, and whether an account exists. */
type Invitation = {
  memberId: number;
  email: string;
  role: string;
  organization: { slug: string; name: string };
  hasPassword: boolean;
};

async function invitationOf(services: Services, memberId: number): Promise<Invitation | null> {
  const { orm } = services.db;
  const member = await findMemberById(orm, memberId);
  const org = member ? await findOrganizationById(orm, member.organizationId) : null;
  if (!member || !org) return null;
  const user = await findUserByEmail(orm, member.email);
  return {
    memberId: member.id,
    email: member.email,
    role: member.role,
    organization: { slug: org.slug, name: org.name },
    hasPassword: Boolean(user?.passwordHash),
  };
}

function invitationForm(action: string, invitation: Invitation, csrf: string | null) {
  return html`<form method="post" action="${action}">
${csrf ? html`<input type="hidden" name="csrf" value="${csrf}">` : ""}
<p>You are invited to join <strong>${invitation.organization.name}</strong> as <strong>${invitation.role}</strong>.</p>
<p>Account: <strong>${invitation.email}</strong></p>
${
  invitation.hasPassword
    ? html`<label for="password">Your password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p class="hint">This address has an account: enter its password to join.</p>`
    : newPasswordField("Choose a password")
}
<button type="submit">Join ${invitation.organization.name}</button>
</form>`;
}

const formString = (form: Record<string, unknown>, name: string) =>
  typeof form[name] === "string" ? (form[name] as string) : "";

/**
 * The sign-in pages at Sentry's paths: `/auth/login/` (email and password,
 * and "Sign in with …" when OpenID Connect is configured), `/auth/logout/`,
 * `/auth/sso/` and its callback, `/auth/set-password/{secret}/` (one-time
 * links from `sluice users create` and password resets),
 * `/accept/{secret}/` (invitations) and `/account/recover/`.
 */
export function createAuthRoutes(services: Services): Hono<WebEnv> {
  const app = new Hono<WebEnv>({ strict: false });
  app.use("*", sessionAuth(services));
  const ssoName = services.config.accounts.oidc?.name ?? null;

  app.get("/auth/login", async (c) => {
    const next = safeNext(c.req.query("next"));
    const viewer = c.get("viewer");
    if (viewer && viewer.caller.kind === "user")
      return c.redirect(next ?? (await landing(services, viewer.caller.user)));
    return c.html(authPage("Sign in", loginForm(next, "", ssoName)));
  });

  app.post("/auth/login", async (c) => {
    const next = safeNext(c.req.query("next"));
    const problem = await csrfProblem(c, services.config.publicUrl, null);
    if (problem) return c.html(authPage("Sign in", loginForm(next, "", ssoName), problem), 403);
    const form = await c.req.parseBody();
    const email = formString(form, "email").slice(0, 254);
    const result = await signInWithPassword(
      services,
      email,
      formString(form, "password"),
      clientAddress(c, services.config.accounts.trustForwardedFor),
    );
    if (!result.ok)
      return c.html(
        authPage("Sign in", loginForm(next, email, ssoName), result.message),
        result.status,
      );
    await signIn(c, result.user);
    return c.redirect(next ?? (await landing(services, result.user)), 303);
  });

  app.get("/auth/logout", (c) => {
    const viewer = c.get("viewer");
    if (!viewer) return c.redirect("/auth/login/");
    return c.html(
      authPage(
        "Sign out",
        html`<form method="post" action="/auth/logout/"><input type="hidden" name="csrf" value="${viewer.csrfToken}"><button type="submit">Sign out</button></form>`,
      ),
    );
  });

  app.post("/auth/logout", requireCsrf(), async (c) => {
    const secret = getCookie(c, SESSION_COOKIE);
    if (secret) await endSession(services, secret);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/auth/login/", 303);
  });

  app.get("/auth/sso", async (c) => {
    if (!services.config.accounts.oidc)
      return c.html(
        authPage(
          "Sign in",
          html`<p>Single sign-on is not configured on this Sluice. <a href="/auth/login/">Sign in with your email and password</a>.</p>`,
        ),
        404,
      );
    try {
      return c.redirect(await startOidcSignIn(services, safeNext(c.req.query("next")) ?? ""));
    } catch (error) {
      services.log.error({ err: error }, "OpenID Connect sign-in could not start");
      return c.html(
        authPage(
          "Sign in",
          loginForm(null, "", ssoName),
          "The single sign-on provider cannot be reached. Try again later.",
        ),
        503,
      );
    }
  });

  app.get("/auth/sso/callback", async (c) => {
    try {
      const { user, next } = await finishOidcSignIn(
        services,
        new URL(c.req.url, services.config.publicUrl),
        clientAddress(c, services.config.accounts.trustForwardedFor),
      );
      await signIn(c, user);
      return c.redirect(safeNext(next) ?? (await landing(services, user)));
    } catch (error) {
      if (!(error instanceof OidcError))
        services.log.error({ err: error }, "OpenID Connect sign-in failed");
      const message =
        error instanceof OidcError ? error.message : "Single sign-on failed. Try again.";
      return c.html(authPage("Sign in", loginForm(null, "", ssoName), message), 400);
    }
  });

  app.get("/auth/set-password/:secret", async (c) => {
    const link = await findLink(services, "set_password", c.req.param("secret"));
    const user = link?.userId ? await findUserById(services.db.orm, link.userId) : null;
    if (!user)
      return c.html(
        authPage("Set a password", html`<p>This link has expired or was used already.</p>`),
        404,
      );
    return c.html(authPage("Set a password", passwordForm(c.req.path, user.email)));
  });

  app.post("/auth/set-password/:secret", async (c) => {
    const secret = c.req.param("secret");
    const problem = await csrfProblem(c, services.config.publicUrl, null);
    const link = await findLink(services, "set_password", secret);
    const user = link?.userId ? await findUserById(services.db.orm, link.userId) : null;
    if (!user || problem)
      return c.html(
        authPage(
          "Set a password",
          html`<p>${problem ?? "This link has expired or was used already."}</p>`,
        ),
        problem ? 403 : 404,
      );
    const password = formString(await c.req.parseBody(), "password");
    const weak = passwordProblem(password);
    if (weak)
      return c.html(authPage("Set a password", passwordForm(c.req.path, user.email), weak), 400);
    if (!(await useUserLink(services.db.orm, hashApiToken(secret))))
      return c.html(
        authPage("Set a password", html`<p>This link has expired or was used already.</p>`),
        404,
      );
    await setUserPassword(services.db.orm, user.id, await hashPassword(password));
    await revokeUserSessions(services.db.orm, user.id);
    await signIn(c, user);
    return c.redirect(await landing(services, user), 303);
  });

  const invitationGone = (c: Context<WebEnv>, problem: string | null = null) =>
    c.html(
      authPage(
        "Accept the invitation",
        html`<p>${problem ?? "This invitation has expired or was used already."} Ask whoever invited you for a new one, or <a href="/auth/login/">sign in</a>.</p>`,
      ),
      problem ? 403 : 404,
    );

  app.get("/accept/:secret", async (c) => {
    const link = await findLink(services, "accept_invite", c.req.param("secret"));
    const invitation = link?.memberId ? await invitationOf(services, link.memberId) : null;
    if (!invitation) return invitationGone(c);
    const csrf = c.get("viewer")?.csrfToken ?? null;
    return c.html(authPage("Accept the invitation", invitationForm(c.req.path, invitation, csrf)));
  });

  app.post("/accept/:secret", async (c) => {
    const secret = c.req.param("secret");
    const viewer = c.get("viewer");
    const problem = await csrfProblem(c, services.config.publicUrl, viewer);
    if (problem) return invitationGone(c, problem);
    const link = await findLink(services, "accept_invite", secret);
    const invitation = link?.memberId ? await invitationOf(services, link.memberId) : null;
    if (!invitation) return invitationGone(c);
    const { orm } = services.db;
    const accepted = await acceptInvitation(
      services,
      invitation.memberId,
      formString(await c.req.parseBody(), "password"),
    );
    if (typeof accepted === "string")
      return c.html(
        authPage(
          "Accept the invitation",
          invitationForm(c.req.path, invitation, viewer?.csrfToken ?? null),
          accepted,
        ),
        400,
      );
    if (!(await useUserLink(orm, hashApiToken(secret)))) return invitationGone(c);
    await signIn(c, accepted.user);
    return c.redirect(`/organizations/${accepted.organizationSlug}/issues/`, 303);
  });

  const setupGone = (c: Context<WebEnv>, problem: string | null = null) =>
    c.html(
      authPage(
        "Create the first owner",
        html`<p>${problem ?? "This link has expired or was used already, or the first owner exists."} <a href="/auth/login/">Sign in</a>.</p>`,
      ),
      problem ? 403 : 404,
    );

  app.get("/auth/setup/:secret", async (c) => {
    const link = await findLink(services, "first_owner", c.req.param("secret"));
    if (!link || (await countUsers(services.db.orm)) > 0) return setupGone(c);
    return c.html(authPage("Create the first owner", setupForm(c.req.path, "")));
  });

  app.post("/auth/setup/:secret", async (c) => {
    const secret = c.req.param("secret");
    const problem = await csrfProblem(c, services.config.publicUrl, null);
    const link = await findLink(services, "first_owner", secret);
    if (!link || problem || (await countUsers(services.db.orm)) > 0) return setupGone(c, problem);
    const form = await c.req.parseBody();
    const email = formString(form, "email").trim().slice(0, 254);
    const password = formString(form, "password");
    const weak = /^[^@\s]+@[^@\s]+$/.test(email)
      ? passwordProblem(password)
      : "Enter a valid email address.";
    if (weak)
      return c.html(authPage("Create the first owner", setupForm(c.req.path, email), weak), 400);
    if (!(await useUserLink(services.db.orm, hashApiToken(secret)))) return setupGone(c);
    const org = await ensureOrganization(services.db.orm, "sluice", "sluice");
    const { user } = await addUserToOrganization(services, org, email, "owner", null);
    await setUserPassword(services.db.orm, user.id, await hashPassword(password));
    // Whoever installs Sluice administers the instance (the fleet page).
    await setUserSuperuser(services.db.orm, user.email, true);
    await signIn(c, user);
    return c.redirect(`/organizations/${org.slug}/issues/`, 303);
  });

  app.get("/account/recover", (c) =>
    c.html(
      authPage(
        "Reset your password",
        html`<p>${services.config.accounts.smtpUrl ? "Ask an owner or manager of your organization to send you a new invitation, or run" : "Run"} <code>sluice users reset-password --email you@example.com</code> on a Sluice node: it ${services.config.accounts.smtpUrl ? "mails" : "prints"} a one-time link to set a new password.</p>`,
      ),
    ),
  );

  return app;
}

/**
 * Binds an invitation to its user: the existing account of the invited
 * address (its password must match), or a new one with this password.
 * Returns the user and organization, or the message for the form.
 */
async function acceptInvitation(
  services: Services,
  memberId: number,
  password: string,
): Promise<{ user: User; organizationSlug: string } | string> {
  const { orm } = services.db;
  const member = await findMemberById(orm, memberId);
  const org = member ? await findOrganizationById(orm, member.organizationId) : null;
  if (!member || !org) return "This invitation has expired or was used already.";
  const { user } = await ensureUser(orm, member.email);
  if (user.passwordHash) {
    const check = await signInWithPassword(services, user.email, password, null);
    if (!check.ok) return "This address has an account already: enter its password.";
  } else {
    const weak = passwordProblem(password);
    if (weak) return weak;
    await setUserPassword(orm, user.id, await hashPassword(password));
  }
  await attachMemberUser(orm, member.id, user.id);
  await audit(services, {
    organizationId: org.id,
    caller: { kind: "user", user, token: null, session: null },
    event: "member.accept",
    targetObject: member.id,
    targetUserId: user.id,
    data: { email: user.email, role: member.role },
  });
  return { user, organizationSlug: org.slug };
}
