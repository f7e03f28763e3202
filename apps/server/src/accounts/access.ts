import {
  type ApiToken,
  findMembership,
  findOrganizationById,
  listMemberProjectIds,
  listOrganizations,
  listUserOrganizations,
  type Organization,
  type User,
  type UserSession,
} from "@sluice/db";
import type { Services } from "../services.ts";
import {
  ALL_SCOPES,
  isGlobalRole,
  isOrganizationRole,
  type OrganizationRole,
  roleScopes,
} from "./roles.ts";

/**
 * Who is calling (README "Accounts and access"):
 * - `instance-admin`: a token with neither organization nor user, as 0.1.0
 *   and 0.2.0 made them: every organization, its own scopes;
 * - `organization-token`: a `sntrys_` token, one organization, its scopes;
 * - `user`: a signed-in browser (session) or a `sntryu_` user token acting
 *   as its user, with the user's memberships, capped by the token's scopes.
 */
export type Caller =
  | { kind: "instance-admin"; token: ApiToken }
  | { kind: "organization-token"; token: ApiToken; organizationId: number }
  | { kind: "user"; user: User; token: ApiToken | null; session: UserSession | null };

/**
 * Whether the caller may use what belongs to the whole instance, not to
 * one organization (`/api/0/internal/`, the pages under `/manage/`): an
 * instance-admin token, or a signed-in session of a superuser (Sentry's
 * `User.is_superuser`). As Sentry's `is_active_superuser`
 * (getsentry/sentry `src/sentry/auth/superuser.py`), the status goes with
 * the session, never with a user's token; an organization owner without it
 * is no admin of the instance.
 */
export function isInstanceAdmin(caller: Caller): boolean {
  if (caller.kind === "instance-admin") return true;
  return (
    caller.kind === "user" &&
    caller.session !== null &&
    caller.user.isActive &&
    caller.user.isSuperuser
  );
}

/** A signed-in browser, as pages see it. */
export type Viewer = {
  user: { id: number; email: string; name: string | null };
  sessionId: string;
  csrfToken: string;
  caller: Caller;
};

/** What the caller may do in one organization. */
export type OrganizationAccess = {
  /** The caller's role; null for tokens, which have scopes but no role. */
  role: OrganizationRole | null;
  /** The caller's membership row, for "is this me" checks; null for tokens. */
  memberId: number | null;
  scopes: ReadonlySet<string>;
  /** Projects the caller sees: all of the organization's, or these ids. */
  projectIds: "all" | number[];
  canSeeProject(projectId: number): boolean;
};

/** The caller's access, loaded lazily per organization and kept for one request. */
export type Access = {
  caller: Caller;
  /** The most the caller can hold anywhere: a route whose scope is not here is a 403 at once. */
  maxScopes: ReadonlySet<string>;
  /** Organizations the caller can see (at most 1,000), by slug. */
  organizations(): Promise<Organization[]>;
  /** Null when the caller has no access to `org`: callers answer 404, so existence does not leak. */
  forOrganization(org: Organization): Promise<OrganizationAccess | null>;
};

const everyProject = (scopes: ReadonlySet<string>): OrganizationAccess => ({
  role: null,
  memberId: null,
  scopes,
  projectIds: "all",
  canSeeProject: () => true,
});

/** Builds the `Access` of a caller (or of a page's viewer). */
export function loadAccess(services: Services, who: Caller | Viewer): Access {
  const caller = "caller" in who ? who.caller : who;
  const { orm } = services.db;
  const cache = new Map<number, Promise<OrganizationAccess | null>>();
  const tokenScopes = caller.token ? new Set(caller.token.scopes) : null;
  const maxScopes = tokenScopes ?? ALL_SCOPES;

  async function compute(org: Organization): Promise<OrganizationAccess | null> {
    switch (caller.kind) {
      case "instance-admin":
        return everyProject(maxScopes);
      case "organization-token":
        return caller.organizationId === org.id ? everyProject(maxScopes) : null;
      case "user": {
        const member = await findMembership(orm, org.id, caller.user.id);
        if (!member || !isOrganizationRole(member.role)) return null;
        const granted = roleScopes(member.role);
        const scopes = tokenScopes
          ? new Set([...granted].filter((s) => tokenScopes.has(s)))
          : granted;
        const global = isGlobalRole(member.role) || org.openMembership;
        const projectIds = global ? "all" : await listMemberProjectIds(orm, member.id);
        return {
          role: member.role,
          memberId: member.id,
          scopes,
          projectIds,
          canSeeProject: (id) => projectIds === "all" || projectIds.includes(id),
        };
      }
    }
  }

  return {
    caller,
    maxScopes,
    async organizations() {
      if (caller.kind === "instance-admin") return listOrganizations(orm, 1000, 0);
      if (caller.kind === "user") return listUserOrganizations(orm, caller.user.id);
      const bound = await findOrganizationById(orm, caller.organizationId);
      return bound ? [bound] : [];
    },
    forOrganization(org) {
      let found = cache.get(org.id);
      if (!found) {
        found = compute(org);
        cache.set(org.id, found);
      }
      return found;
    },
  };
}
