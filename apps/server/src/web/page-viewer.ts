import { listOrganizations, type Organization } from "@sluice/db";
import type { MiddlewareHandler } from "hono";
import type { Services } from "../services.ts";

/**
 * Stand-in for the lead's accounts (apps/server/src/accounts/): the same
 * shapes as `session-middleware.ts` and `access.ts` will export, with one
 * fixed viewer who may see everything. Deleted once accounts are merged.
 */

export type Viewer = {
  user: { id: number; email: string; name: string | null };
  sessionId: string;
  csrfToken: string;
} | null;

export type OrganizationAccess = {
  role: "owner" | "manager" | "admin" | "member" | null;
  scopes: ReadonlySet<string>;
  canSeeProject(projectId: number): boolean;
  projectIds: "all" | number[];
};

export type Access = {
  organizations(): Promise<Organization[]>;
  forOrganization(org: Organization): Promise<OrganizationAccess | null>;
};

const FIXED_VIEWER: NonNullable<Viewer> = {
  user: { id: 1, email: "owner@example.com", name: "Owner" },
  sessionId: "fixed",
  csrfToken: "fixed-csrf-token",
};

const ALL_SCOPES = new Set([
  "org:read",
  "org:write",
  "org:admin",
  "member:read",
  "member:write",
  "member:admin",
  "project:read",
  "project:write",
  "project:admin",
  "project:releases",
  "team:read",
  "team:write",
  "event:read",
  "event:write",
  "event:admin",
]);

/** Sets `viewer` (always the fixed one here). */
export function sessionAuth(
  _services: Services,
): MiddlewareHandler<{ Variables: { viewer: Viewer } }> {
  return async (c, next) => {
    c.set("viewer", FIXED_VIEWER);
    await next();
  };
}

/** Rejects a POST whose `csrf` field (or `X-CSRFToken` header) is not the viewer's token. */
export function requireCsrf(): MiddlewareHandler<{ Variables: { viewer: Viewer } }> {
  return async (c, next) => {
    if (c.req.method === "POST") {
      const viewer = c.get("viewer");
      const header = c.req.header("x-csrftoken");
      const body = header ? null : await c.req.parseBody();
      const token = header ?? (typeof body?.csrf === "string" ? body.csrf : "");
      if (!viewer || token !== viewer.csrfToken) return c.text("CSRF token missing or wrong", 403);
    }
    await next();
  };
}

/** Everything, for everyone. */
export function loadAccess(services: Services, _viewer: Viewer): Access {
  return {
    organizations: () => listOrganizations(services.db.orm, 100, 0),
    forOrganization: async () => ({
      role: "owner",
      scopes: ALL_SCOPES,
      canSeeProject: () => true,
      projectIds: "all",
    }),
  };
}

/** A member as the members page lists them. */
export type MemberRow = { email: string; name: string | null; role: string; pending: boolean };

/** Seam: the organization's members (the lead's accounts provide the real list). */
export async function listMembers(
  _services: Services,
  _organizationId: number,
): Promise<MemberRow[]> {
  return [
    { email: FIXED_VIEWER.user.email, name: FIXED_VIEWER.user.name, role: "owner", pending: false },
  ];
}

/** Seam: invites `email` with `role`; resolves to what to tell the inviter. */
export async function inviteMember(
  _services: Services,
  _organizationId: number,
  _invite: { email: string; role: string },
): Promise<{ ok: boolean; message: string }> {
  return { ok: false, message: "Invitations need accounts, which this build does not have yet." };
}

/** Seam: changes the viewer's password. */
export async function changePassword(
  _services: Services,
  _viewer: NonNullable<Viewer>,
  _change: { current: string; next: string },
): Promise<{ ok: boolean; message: string }> {
  return { ok: false, message: "Passwords need accounts, which this build does not have yet." };
}

/** Seam: the viewer's user auth tokens (label, scopes, created). */
export async function listUserTokens(
  _services: Services,
  _viewer: NonNullable<Viewer>,
): Promise<{ id: number; label: string; scopes: string[]; createdAt: Date }[]> {
  return [];
}
