/**
 * Sentry's organization roles and the scopes each grants, as in
 * getsentry/sentry `src/sentry/conf/server.py` (SENTRY_ROLES) and the role
 * table of https://docs.sentry.io/organization/membership/: members act on
 * issues; admins also change projects and teams; managers also manage
 * members and the organization; owners also remove it.
 */
export const ORGANIZATION_ROLES = ["member", "admin", "manager", "owner"] as const;
export type OrganizationRole = (typeof ORGANIZATION_ROLES)[number];

const MEMBER = [
  "event:read",
  "event:write",
  "event:admin",
  "project:releases",
  "project:read",
  "org:read",
  "member:read",
  "team:read",
  "alerts:read",
  "alerts:write",
];
const ADMIN = [
  ...MEMBER,
  "project:write",
  "project:admin",
  "team:write",
  "team:admin",
  "org:integrations",
];
const MANAGER = [...ADMIN, "member:invite", "member:write", "member:admin", "org:write"];
const OWNER = [...MANAGER, "org:admin"];

const SCOPES: Record<OrganizationRole, ReadonlySet<string>> = {
  member: new Set(MEMBER),
  admin: new Set(ADMIN),
  manager: new Set(MANAGER),
  owner: new Set(OWNER),
};

/** Every scope a role may grant: what an instance-admin holds. */
export const ALL_SCOPES: ReadonlySet<string> = new Set([...OWNER, "org:ci"]);

export function isOrganizationRole(value: string): value is OrganizationRole {
  return (ORGANIZATION_ROLES as readonly string[]).includes(value);
}

/** Scopes of a role; an unknown stored role grants nothing. */
export function roleScopes(role: string): ReadonlySet<string> {
  return isOrganizationRole(role) ? SCOPES[role] : new Set();
}

/**
 * Managers and owners reach every project of their organization whatever
 * their teams (Sentry's `is_global`); members and admins only their teams'
 * projects, unless the organization has Open Membership.
 */
export function isGlobalRole(role: string): boolean {
  return role === "manager" || role === "owner";
}

/** Rank of a role, for "may not grant above your own role" (Sentry's `can_manage`). */
export function roleRank(role: string): number {
  return (ORGANIZATION_ROLES as readonly string[]).indexOf(role);
}
