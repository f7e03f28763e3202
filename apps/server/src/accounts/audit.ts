import { recordAuditLogEntry } from "@sluice/db";
import type { Services } from "../services.ts";
import type { Caller } from "./access.ts";

/**
 * Audit log event names, Sentry's where Sentry has one
 * (getsentry/sentry `src/sentry/audit_log/register.py`).
 */
export type AuditEvent =
  | "member.invite"
  | "member.accept"
  | "member.add"
  | "member.edit"
  | "member.remove"
  | "org.edit"
  | "orgauthtoken.create"
  | "orgauthtoken.remove"
  | "user.sign_in";

/** Who did it, as the audit log names them: a user, or a token by its label. */
export function actorOf(caller: Caller | null): { actorUserId: number | null; actorLabel: string } {
  if (!caller) return { actorUserId: null, actorLabel: "sluice" };
  if (caller.kind === "user") return { actorUserId: caller.user.id, actorLabel: caller.user.email };
  return { actorUserId: null, actorLabel: `token ${caller.token.label ?? caller.token.id}` };
}

/** Records one audit log entry; a failure is logged, never fails the action it records. */
export async function audit(
  services: Services,
  entry: {
    organizationId: number;
    caller: Caller | null;
    event: AuditEvent;
    targetObject?: number | null;
    targetUserId?: number | null;
    ipAddress?: string | null;
    data?: Record<string, unknown>;
  },
): Promise<void> {
  try {
    await recordAuditLogEntry(services.db.orm, {
      organizationId: entry.organizationId,
      ...actorOf(entry.caller),
      event: entry.event,
      targetObject: entry.targetObject ?? null,
      targetUserId: entry.targetUserId ?? null,
      ipAddress: entry.ipAddress ?? null,
      data: entry.data ?? {},
    });
  } catch (error) {
    services.log.error({ err: error, event: entry.event }, "audit log entry not recorded");
  }
}
