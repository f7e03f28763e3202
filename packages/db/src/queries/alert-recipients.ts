import type { Queryable } from "../database.ts";

/** One member an alert email goes to: the user and the address it has now. */
export type AlertRecipient = { userId: number; email: string };

/**
 * Whom an email action to members names (README "Alerts"): `member` one
 * user id, `team` a team id of the project's teams, `members` every member
 * who can see the project.
 */
export type AlertRecipientTarget =
  | { kind: "member"; userId: number }
  | { kind: "team"; teamId: number }
  | { kind: "members" };

/** The organization roles that count, and those that see every project (accounts/roles.ts). */
export type RecipientRoles = { roles: readonly string[]; globalRoles: readonly string[] };

/**
 * The members of a project's organization an alert email goes to, most
 * recently signed in first, at most `limit`: a user with an active account
 * and an address (an invitation not yet accepted has no user), a known
 * role, who can see the project as accounts/access.ts decides (a global
 * role, Open Membership, or one of the project's teams), and whom `target`
 * names (a team counts only when it is one of the project's teams, as
 * Sentry's `get_team_from_identifier`). `onlyUserId` narrows it to one
 * user, to check at send time that a recipient still is one.
 */
export async function listAlertRecipients(
  db: Queryable,
  projectId: number,
  target: AlertRecipientTarget,
  roles: RecipientRoles,
  limit: number,
  onlyUserId: number | null = null,
): Promise<AlertRecipient[]> {
  const result = await db.query(
    `SELECT u.id::int AS "userId", u.email
       FROM projects p
       JOIN organizations o ON o.id = p.organization_id
       JOIN organization_members m ON m.organization_id = p.organization_id
       JOIN users u ON u.id = m.user_id
      WHERE p.id = $1 AND u.is_active AND u.email <> ''
        AND m.role = ANY($2::text[])
        AND (m.role = ANY($3::text[]) OR o.open_membership
             OR EXISTS (SELECT 1 FROM team_members tm
                          JOIN project_teams pt ON pt.team_id = tm.team_id
                         WHERE tm.member_id = m.id AND pt.project_id = p.id))
        AND ($4::bigint IS NULL OR u.id = $4)
        AND ($5::bigint IS NULL OR EXISTS (
              SELECT 1 FROM team_members tm
                JOIN project_teams pt ON pt.team_id = tm.team_id
                JOIN teams t ON t.id = tm.team_id
               WHERE tm.member_id = m.id AND tm.team_id = $5
                 AND pt.project_id = p.id AND t.organization_id = p.organization_id))
        AND ($6::bigint IS NULL OR u.id = $6)
      ORDER BY u.last_login_at DESC NULLS LAST, u.id
      LIMIT $7`,
    [
      projectId,
      roles.roles,
      roles.globalRoles,
      target.kind === "member" ? target.userId : null,
      target.kind === "team" ? target.teamId : null,
      onlyUserId,
      limit,
    ],
  );
  return result.rows;
}

/**
 * Whether a team is one of the project's teams (Sentry's
 * `MemberTeamForm`: "This team is not part of the project.").
 */
export async function isProjectTeam(
  db: Queryable,
  projectId: number,
  teamId: number,
): Promise<boolean> {
  const result = await db.query(
    `SELECT 1 FROM project_teams pt
       JOIN teams t ON t.id = pt.team_id
       JOIN projects p ON p.id = pt.project_id
      WHERE pt.project_id = $1 AND pt.team_id = $2 AND t.organization_id = p.organization_id`,
    [projectId, teamId],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Whether a user is a member of the project's organization (whatever it can see). */
export async function isProjectOrganizationMember(
  db: Queryable,
  projectId: number,
  userId: number,
): Promise<boolean> {
  const result = await db.query(
    `SELECT 1 FROM organization_members m JOIN projects p ON p.organization_id = m.organization_id
      WHERE p.id = $1 AND m.user_id = $2`,
    [projectId, userId],
  );
  return (result.rowCount ?? 0) > 0;
}
