import {
  countMembersWithRole,
  deleteMember,
  ensureUser,
  findMemberByEmail,
  findUserByEmail,
  type MemberWithUser,
  type Organization,
  type OrganizationMember,
  setMemberRole,
  upsertMember,
} from "@sluice/db";
import type { Services } from "../services.ts";
import type { Caller } from "./access.ts";
import { audit } from "./audit.ts";
import { createLink } from "./links.ts";
import { sendMail } from "./mailer.ts";
import type { OrganizationRole } from "./roles.ts";

/** A refused membership change; its message is for the person who asked. */
export class MembershipError extends Error {}

/**
 * Invites `email` to `org` with `role`: a pending member and a one-time
 * link to accept, mailed when SMTP is configured. Returns the member and
 * the link when it was not mailed (the API returns it, the CLI prints it).
 * Throws MembershipError when the address is a member already.
 */
export async function inviteMember(
  services: Services,
  org: Organization,
  email: string,
  role: OrganizationRole,
  caller: Caller | null,
): Promise<{ member: OrganizationMember; inviteLink: string | null }> {
  const { orm } = services.db;
  const existing = await findUserByEmail(orm, email);
  const member = await upsertMemberIfNew(services, org, email, role);
  const link = await createLink(services, "accept_invite", {
    memberId: member.id,
    ...(existing ? { userId: existing.id } : {}),
  });
  const mailed = await sendMail(services, {
    to: member.email,
    subject: `You are invited to ${org.name} on Sluice`,
    text: `You have been invited to join the organization ${org.name} on Sluice as ${role}.\n\nAccept the invitation: ${link}\n\nThe link works once, for 7 days.`,
  });
  await audit(services, {
    organizationId: org.id,
    caller,
    event: "member.invite",
    targetObject: member.id,
    data: { email: member.email, role },
  });
  return { member, inviteLink: mailed ? null : link };
}

async function upsertMemberIfNew(
  services: Services,
  org: Organization,
  email: string,
  role: OrganizationRole,
): Promise<OrganizationMember> {
  if (await findMemberByEmail(services.db.orm, org.id, email))
    throw new MembershipError(`${email.trim().toLowerCase()} is already a member of ${org.slug}.`);
  return upsertMember(services.db.orm, org.id, email, role, null);
}

/**
 * Adds an existing or new user to `org` at once (no invitation): the CLI's
 * `users create`. Returns the user, whether it was created, and the member.
 */
export async function addUserToOrganization(
  services: Services,
  org: Organization,
  email: string,
  role: OrganizationRole,
  caller: Caller | null,
) {
  const { user, created } = await ensureUser(services.db.orm, email);
  const member = await upsertMember(services.db.orm, org.id, user.email, role, user.id);
  await audit(services, {
    organizationId: org.id,
    caller,
    event: "member.add",
    targetObject: member.id,
    targetUserId: user.id,
    data: { email: user.email, role },
  });
  return { user, created, member };
}

/** Refuses to leave `org` without an owner. */
async function keepAnOwner(services: Services, org: Organization, member: MemberWithUser) {
  if (member.role !== "owner" || member.userId === null) return;
  if ((await countMembersWithRole(services.db.orm, org.id, "owner")) <= 1)
    throw new MembershipError("An organization needs at least one owner.");
}

/** Changes a member's role; throws MembershipError when that would leave no owner. */
export async function changeMemberRole(
  services: Services,
  org: Organization,
  member: MemberWithUser,
  role: OrganizationRole,
  caller: Caller | null,
): Promise<void> {
  if (member.role === role) return;
  await keepAnOwner(services, org, member);
  await setMemberRole(services.db.orm, member.id, role);
  await audit(services, {
    organizationId: org.id,
    caller,
    event: "member.edit",
    targetObject: member.id,
    targetUserId: member.userId,
    data: { email: member.email, role, previousRole: member.role },
  });
}

/** Removes a member; throws MembershipError when that would leave no owner. */
export async function removeMember(
  services: Services,
  org: Organization,
  member: MemberWithUser,
  caller: Caller | null,
): Promise<void> {
  await keepAnOwner(services, org, member);
  await deleteMember(services.db.orm, member.id);
  await audit(services, {
    organizationId: org.id,
    caller,
    event: "member.remove",
    targetObject: member.id,
    targetUserId: member.userId,
    data: { email: member.email, role: member.role },
  });
}
