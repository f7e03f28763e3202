import {
  type Action,
  DISCORD_NOTIFY,
  emailFallthrough,
  emailTargetId,
  MSTEAMS_NOTIFY,
  NOTIFY_EMAIL,
  type RuleErrors,
  type RuleSpec,
  SLACK_NOTIFY,
} from "@sluice/alert-rules";
import {
  type AlertRecipient,
  type AlertRecipientTarget,
  isProjectOrganizationMember,
  isProjectTeam,
  listAlertRecipients,
  type Queryable,
} from "@sluice/db";
import { isGlobalRole, ORGANIZATION_ROLES } from "./accounts/roles.ts";
import { destinationProblem } from "./outbound-guard.ts";

type EmailAction = Extract<Action, { id: typeof NOTIFY_EMAIL }>;

/**
 * Sentry's `FALLTHROUGH_NOTIFICATION_LIMIT`
 * (`src/sentry/notifications/utils/participants.py`): `ActiveMembers`
 * mails the 20 members who were active last.
 */
const ACTIVE_MEMBERS_LIMIT = 20;
/** Most recipients of one email action (a team, all members): one delivery row each. */
const MAX_RECIPIENTS = 1_000;

const ROLES = {
  roles: ORGANIZATION_ROLES,
  globalRoles: ORGANIZATION_ROLES.filter(isGlobalRole),
};

/**
 * Whom an email action to members names, as Sentry's
 * `determine_eligible_recipients` (`src/sentry/notifications/utils/participants.py`):
 * `Member` that user, `Team` the team's members, `IssueOwners` its
 * fallthrough since Sluice has no ownership rules nor assignees
 * (`AllMembers` every member who can see the project, `ActiveMembers` the
 * 20 of them signed in last, `NoOne` nobody). Null for `Addresses` and
 * `NoOne`.
 */
function recipientTargetOf(
  action: EmailAction,
): { target: AlertRecipientTarget; limit: number } | null {
  const id = emailTargetId(action);
  switch (action.targetType) {
    case "Member":
      return id === null ? null : { target: { kind: "member", userId: id }, limit: 1 };
    case "Team":
      return id === null ? null : { target: { kind: "team", teamId: id }, limit: MAX_RECIPIENTS };
    case "IssueOwners":
      switch (emailFallthrough(action)) {
        case "AllMembers":
          return { target: { kind: "members" }, limit: MAX_RECIPIENTS };
        case "ActiveMembers":
          return { target: { kind: "members" }, limit: ACTIVE_MEMBERS_LIMIT };
        case "NoOne":
          return null;
      }
      return null;
    case "Addresses":
      return null;
  }
}

/**
 * The members an email action mails now: each a user who can see the
 * project, with an active account and an address (see
 * `listAlertRecipients`). Empty for `Addresses` (not members) and `NoOne`.
 */
export async function emailRecipientsOf(
  db: Queryable,
  projectId: number,
  action: EmailAction,
): Promise<AlertRecipient[]> {
  const of = recipientTargetOf(action);
  return of ? listAlertRecipients(db, projectId, of.target, ROLES, of.limit) : [];
}

/**
 * Checks at send time that `userId` is still one the action mails: still a
 * member who can see the project, active, and still named by the action
 * (in the team; for `ActiveMembers`, any member who can see the project).
 * Returns the address to send to, or null.
 */
export async function currentRecipient(
  db: Queryable,
  projectId: number,
  action: EmailAction,
  userId: number,
): Promise<AlertRecipient | null> {
  const of = recipientTargetOf(action);
  if (!of) return null;
  const [found] = await listAlertRecipients(db, projectId, of.target, ROLES, 1, userId);
  return found ?? null;
}

/**
 * The target of a delivery to a member, `user:{id}`: the address is read
 * when sending, so a changed address is used and a removed member skipped.
 */
export function memberDeliveryTarget(userId: number): string {
  return `user:${userId}`;
}

/** The user id of a `user:{id}` delivery target; null for an address list. */
export function memberOfDeliveryTarget(target: string): number | null {
  const match = /^user:(\d{1,16})$/.exec(target);
  return match ? Number(match[1]) : null;
}

/**
 * The checks of a rule's targets that need the database and the network,
 * after `parseRule`: a `Member` email names a member of the project's
 * organization who can see the project, a `Team` email one of the
 * project's teams (Sentry's `MemberTeamForm`, `src/sentry/mail/forms/member_team.py`),
 * and a chat action's webhook URL is a public http(s) destination (see
 * outbound-guard.ts) unless `allowPrivate`. Returns Sentry-style field
 * errors (`{"actions": ["…"]}`), empty when the rule may be saved. Both
 * the rules API and the rule pages call it.
 */
export async function checkRuleTargets(
  db: Queryable,
  projectId: number,
  rule: RuleSpec,
  allowPrivate: boolean,
): Promise<RuleErrors> {
  const problems: string[] = [];
  for (const action of rule.actions) {
    if (action.id === NOTIFY_EMAIL) {
      const id = emailTargetId(action);
      if (id === null) continue;
      if (action.targetType === "Member") {
        if (!(await isProjectOrganizationMember(db, projectId, id))) {
          problems.push("targetIdentifier: This user is not a member of the organization.");
        } else if ((await emailRecipientsOf(db, projectId, action)).length === 0) {
          problems.push("targetIdentifier: This user is not part of the project.");
        }
      } else if (action.targetType === "Team" && !(await isProjectTeam(db, projectId, id))) {
        problems.push("targetIdentifier: This team is not part of the project.");
      }
    } else if (
      action.id === SLACK_NOTIFY ||
      action.id === DISCORD_NOTIFY ||
      action.id === MSTEAMS_NOTIFY
    ) {
      const problem = await destinationProblem(action.webhook, allowPrivate);
      if (problem) problems.push(`webhook: ${problem}`);
    }
  }
  return problems.length > 0 ? { actions: problems } : {};
}

/**
 * The checks of the webhooks plugin's URLs (see outbound-guard.ts): one
 * message per refused URL, empty when all may be saved.
 */
export async function checkWebhookUrls(urls: string[], allowPrivate: boolean): Promise<string[]> {
  const problems = await Promise.all(urls.map((url) => destinationProblem(url, allowPrivate)));
  return problems.filter((p): p is string => p !== null);
}
