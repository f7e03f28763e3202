import { findMember, listMembers, type MemberWithUser, type Organization } from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { OrganizationAccess } from "../accounts/access.ts";
import {
  changeMemberRole,
  inviteMember,
  MembershipError,
  removeMember,
} from "../accounts/members.ts";
import { ORGANIZATION_ROLES, roleRank } from "../accounts/roles.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { idParam, organizationAndAccess } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { forbidden, requireScope } from "./require-scope.ts";

const roleField = z.enum(ORGANIZATION_ROLES, {
  error: `role must be one of ${ORGANIZATION_ROLES.join(", ")}`,
});

const memberCreate = z.object({
  email: z.email({ error: "Enter a valid email address." }).max(254),
  orgRole: roleField.optional(),
  role: roleField.optional(),
});
const memberUpdate = z.object({ orgRole: roleField.optional(), role: roleField.optional() });

/**
 * Sentry's member shape (OrganizationMemberSerializer): a pending member
 * is an invitation not yet accepted.
 */
export function serializeMember(member: MemberWithUser, inviteLink: string | null = null) {
  return {
    id: String(member.id),
    email: member.email,
    name: member.userName ?? member.email,
    user:
      member.userId === null
        ? null
        : { id: String(member.userId), email: member.email, name: member.userName ?? member.email },
    role: member.role,
    orgRole: member.role,
    roleName: member.role[0]?.toUpperCase() + member.role.slice(1),
    pending: member.userId === null,
    expired: false,
    inviteStatus: "approved",
    dateCreated: member.createdAt.toISOString(),
    teams: [],
    ...(inviteLink ? { inviteLink } : {}),
  };
}

/** A caller may grant or change only roles up to its own (Sentry's `can_manage` rule); tokens any. */
function checkRoleAllowed(access: OrganizationAccess, role: string) {
  if (access.role !== null && roleRank(role) > roleRank(access.role))
    throw new ApiError(400, `You do not have permission to set that role (${role}).`);
}

async function memberParam(c: Context<ApiEnv>, org: Organization): Promise<MemberWithUser> {
  const raw = c.req.param("memberId");
  const access = await c.get("access").forOrganization(org);
  const id = raw === "me" ? (access?.memberId ?? null) : idParam(c, "memberId");
  const member = id === null ? null : await findMember(c.get("services").db.orm, org.id, id);
  if (!member) throw notFound("member");
  return member;
}

/** Sentry's member endpoints under `/api/0/organizations/{org}/members/`. */
export function registerMemberRoutes(api: Hono<ApiEnv>): void {
  const base = "/api/0/organizations/:org/members";

  api.get(base, requireScope("member:read"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const { db } = c.get("services");
    const rows = await pageOf(c, (limit, offset) => listMembers(db.orm, org.id, limit, offset));
    return c.json(rows.map((m) => serializeMember(m)));
  });

  api.post(base, requireScope("member:invite"), async (c) => {
    const { org, access } = await organizationAndAccess(c);
    const body = await readJsonBody(c, memberCreate);
    const role = body.orgRole ?? body.role ?? "member";
    checkRoleAllowed(access, role);
    try {
      const { member, inviteLink } = await inviteMember(
        c.get("services"),
        org,
        body.email,
        role,
        c.get("access").caller,
      );
      const full = await findMember(c.get("services").db.orm, org.id, member.id);
      return c.json(serializeMember(full as MemberWithUser, inviteLink), 201);
    } catch (error) {
      if (error instanceof MembershipError) throw new ApiError(409, error.message);
      throw error;
    }
  });

  api.get(`${base}/:memberId`, requireScope("member:read"), async (c) => {
    const { org } = await organizationAndAccess(c);
    return c.json(serializeMember(await memberParam(c, org)));
  });

  api.put(`${base}/:memberId`, requireScope("member:admin"), async (c) => {
    const { org, access } = await organizationAndAccess(c);
    const member = await memberParam(c, org);
    const body = await readJsonBody(c, memberUpdate);
    const role = body.orgRole ?? body.role;
    if (role !== undefined) {
      checkRoleAllowed(access, role);
      checkRoleAllowed(access, member.role);
      try {
        await changeMemberRole(c.get("services"), org, member, role, c.get("access").caller);
      } catch (error) {
        if (error instanceof MembershipError) throw new ApiError(400, error.message);
        throw error;
      }
    }
    return c.json(serializeMember(await memberParam(c, org)));
  });

  // Anyone may leave (delete their own membership); removing others needs member:admin.
  api.delete(`${base}/:memberId`, requireScope("member:read"), async (c) => {
    const { org, access } = await organizationAndAccess(c);
    const member = await memberParam(c, org);
    const self = access.memberId !== null && access.memberId === member.id;
    if (!self) {
      if (!access.scopes.has("member:admin")) throw forbidden("member:admin");
      checkRoleAllowed(access, member.role);
    }
    try {
      await removeMember(c.get("services"), org, member, c.get("access").caller);
    } catch (error) {
      if (error instanceof MembershipError) throw new ApiError(400, error.message);
      throw error;
    }
    return c.body(null, 204);
  });
}
