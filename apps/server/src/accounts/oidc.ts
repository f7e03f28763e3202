import {
  createOidcLogin,
  ensureOrganization,
  ensureUser,
  findMemberByEmail,
  findOrganization,
  findUserByEmail,
  findUserByIdentity,
  linkUserIdentity,
  takeOidcLogin,
  touchUserLogin,
  type User,
  upsertMember,
} from "@sluice/db";
import * as oidc from "openid-client";
import type { Services } from "../services.ts";
import { audit } from "./audit.ts";
import { auditSignIn } from "./sign-in.ts";

/** A sign-in the provider or the user's claims refused; the message is for the sign-in page. */
export class OidcError extends Error {}

/** How long a started sign-in may take to come back (ms). */
const LOGIN_MAX_AGE_MS = 10 * 60_000;

let discovered: { issuer: string; config: Promise<oidc.Configuration> } | null = null;

/** The provider's configuration by discovery (`/.well-known/openid-configuration`), once per process. */
function providerConfig(services: Services): Promise<oidc.Configuration> {
  const settings = services.config.accounts.oidc;
  if (!settings) throw new OidcError("Single sign-on is not configured.");
  if (discovered?.issuer !== settings.issuer) {
    const insecure = settings.issuer.startsWith("http:");
    const config = oidc.discovery(
      new URL(settings.issuer),
      settings.clientId,
      settings.clientSecret,
      undefined,
      // Plain http only when the operator configured an http issuer (a
      // provider on localhost or a private network).
      insecure ? { execute: [oidc.allowInsecureRequests] } : undefined,
    );
    discovered = { issuer: settings.issuer, config };
    // A failed discovery is retried at the next sign-in, not cached.
    config.catch(() => {
      if (discovered?.config === config) discovered = null;
    });
  }
  return discovered.config;
}

const redirectUri = (services: Services) => `${services.config.publicUrl}/auth/sso/callback/`;

/**
 * Starts an authorization-code sign-in with PKCE, state and nonce (kept in
 * Postgres, so the callback may land on any node); returns the provider's
 * authorization URL to redirect to.
 */
export async function startOidcSignIn(services: Services, nextPath: string): Promise<string> {
  const config = await providerConfig(services);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  await createOidcLogin(services.db.orm, { state, nonce, codeVerifier, nextPath });
  return oidc
    .buildAuthorizationUrl(config, {
      redirect_uri: redirectUri(services),
      scope: "openid email profile",
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state,
      nonce,
    })
    .toString();
}

/**
 * Completes a sign-in from the callback URL: exchanges the code, checks
 * the ID token (signature, issuer, audience, nonce: openid-client), then
 * finds the user by the provider's subject, else by verified email, else
 * creates one; a new user whose email domain is in `autoJoinDomains` joins
 * `autoJoinOrganization` with `autoJoinRole`. Throws OidcError for a
 * refused or unverified sign-in.
 */
export async function finishOidcSignIn(
  services: Services,
  callbackUrl: URL,
  ipAddress: string | null,
): Promise<{ user: User; next: string }> {
  const settings = services.config.accounts.oidc;
  if (!settings) throw new OidcError("Single sign-on is not configured.");
  const state = callbackUrl.searchParams.get("state") ?? "";
  const login = state
    ? await takeOidcLogin(services.db.orm, state.slice(0, 200), LOGIN_MAX_AGE_MS)
    : null;
  if (!login)
    throw new OidcError("This sign-in has expired or was not started here. Sign in again.");
  const config = await providerConfig(services);
  let claims: oidc.IDToken | undefined;
  try {
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: login.codeVerifier,
      expectedState: login.state,
      expectedNonce: login.nonce,
    });
    claims = tokens.claims();
    // In the code flow a provider may put the email and profile claims
    // only in the UserInfo answer, not in the ID token (OpenID Connect
    // Core 1.0 §5.4; oidc-provider's default `conformIdTokenClaims`), so
    // ask for them there when the ID token lacks the address.
    if (claims && typeof claims.email !== "string")
      claims = {
        ...claims,
        ...(await oidc.fetchUserInfo(config, tokens.access_token, claims.sub)),
      };
  } catch (error) {
    services.log.warn({ err: error }, "OpenID Connect code exchange refused");
    throw new OidcError("The single sign-on provider refused the sign-in.");
  }
  if (!claims) throw new OidcError("The single sign-on provider sent no ID token.");
  const user = await userForClaims(services, settings.issuer, claims);
  await touchUserLogin(services.db.orm, user.id);
  await auditSignIn(services, user, ipAddress, "sso");
  return { user, next: login.nextPath };
}

async function userForClaims(
  services: Services,
  issuer: string,
  claims: oidc.IDToken,
): Promise<User> {
  const { orm } = services.db;
  const settings = services.config.accounts.oidc;
  const linked = await findUserByIdentity(orm, issuer, claims.sub);
  if (linked) {
    if (!linked.isActive) throw new OidcError("This account is disabled.");
    return linked;
  }
  const email = typeof claims.email === "string" ? claims.email.trim().toLowerCase() : "";
  if (!email || claims.email_verified !== true)
    throw new OidcError("The single sign-on provider did not confirm your email address.");
  const existing = await findUserByEmail(orm, email);
  const name = typeof claims.name === "string" ? claims.name.slice(0, 200) : null;
  const user = existing ?? (await ensureUser(orm, email, name)).user;
  if (!user.isActive) throw new OidcError("This account is disabled.");
  await linkUserIdentity(orm, issuer, claims.sub, user.id);
  const domain = email.split("@").at(-1) ?? "";
  if (settings?.autoJoinDomains.includes(domain)) {
    const org =
      (await findOrganization(orm, settings.autoJoinOrganization)) ??
      (await ensureOrganization(orm, settings.autoJoinOrganization, settings.autoJoinOrganization));
    const member = await findMemberByEmail(orm, org.id, email);
    if (!member?.userId) {
      const joined = await upsertMember(
        orm,
        org.id,
        email,
        member?.role ?? settings.autoJoinRole,
        user.id,
      );
      await audit(services, {
        organizationId: org.id,
        caller: null,
        event: "member.add",
        targetObject: joined.id,
        targetUserId: user.id,
        data: { email, role: joined.role, via: "sso-domain" },
      });
    }
  }
  return user;
}
