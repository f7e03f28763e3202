import { type Action, type AlertContext, NOTIFY_EMAIL } from "@sluice/alert-rules";
import {
  type Database,
  type DeliveryToSend,
  findProjectPlugin,
  loadDelivery,
  recordDeliveryAttempt,
  skipDelivery,
} from "@sluice/db";
import { type AlertDeliverPayload, type JobRun, PermanentJobError } from "@sluice/queue";
import { currentRecipient, memberOfDeliveryTarget } from "../alert-targets.ts";
import { serializeError } from "../logger.ts";
import { PermanentSendError, type Senders } from "./senders.ts";

/** What became of one run of an `alert.deliver` job (the metric's `outcome`). */
export type DeliveryOutcome = "delivered" | "retry" | "failed" | "skipped";

/** Longest error text kept on a delivery and its rule. */
const MAX_ERROR_CHARS = 500;

/** Sentry's short id: the project slug and a base-36 counter (`DEFAULT-1A`). */
function shortId(projectSlug: string, n: number): string {
  return `${projectSlug.toUpperCase()}-${n.toString(36).toUpperCase()}`;
}

/** Why the rule fired, in Sentry's words. */
function reasonOf(triggerKey: string): string {
  if (triggerKey === "first_seen") return "A new issue is created";
  if (triggerKey.startsWith("regression:"))
    return "The issue changes state from resolved to unresolved";
  if (triggerKey.startsWith("frequency:")) return "The issue passed a frequency threshold";
  return "The rule's conditions were met";
}

/** The content of a delivery's notification; links are `{SLUICE_URL}/organizations/{org}/issues/{id}/`. */
function contextOf(d: DeliveryToSend, publicUrl: string): AlertContext {
  const payload = d.event.payload ?? {};
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const tags = Array.isArray(payload.tags)
    ? (payload.tags.filter((t) => Array.isArray(t) && t.length === 2).map((t) => t.map(String)) as [
        string,
        string,
      ][])
    : payload.tags && typeof payload.tags === "object"
      ? Object.entries(payload.tags as Record<string, unknown>).map(
          ([k, v]) => [k, String(v)] as [string, string],
        )
      : [];
  const logentry = payload.logentry as { formatted?: unknown; message?: unknown } | undefined;
  const message =
    str(logentry?.formatted) ?? str(logentry?.message) ?? str(payload.message) ?? d.issue.title;
  return {
    rule: { id: d.rule.id, name: d.rule.name },
    organizationSlug: d.organizationSlug,
    project: d.project,
    issue: {
      id: d.issue.id,
      shortId: shortId(d.project.slug, d.issue.shortId),
      title: d.issue.title,
      culprit: d.issue.culprit,
      level: d.issue.level,
      count: d.issue.timesSeen,
      userCount: d.issue.userCount,
    },
    event: {
      eventId: d.event.eventId,
      level: str(payload.level) ?? d.issue.level,
      release: str(payload.release),
      environment: str(payload.environment),
      message,
      logger: str(payload.logger),
      tags,
      payload,
    },
    reason: reasonOf(d.triggerKey),
    issueUrl: `${publicUrl}/organizations/${d.organizationSlug}/issues/${d.issue.id}/`,
  };
}

/**
 * The `alert.deliver` job: sends one pending delivery once. A delivery no
 * longer pending (sent, or given up) is skipped, so a job run twice sends
 * twice only when the first run died after the receiver got the request
 * and before `recordDeliveryAttempt` committed; both requests carry the
 * delivery's idempotency key. An email to a member (`user:{id}`) is sent
 * to the address the user has now, and skipped (status `skipped`, not a
 * failure) when the user is no longer one the rule's action mails (removed,
 * deactivated, out of the team or the project). A failed send records its
 * error on the delivery and the rule and throws (the queue retries with
 * backoff); the last attempt, or a permanent failure, marks it failed.
 */
export async function deliverAlert(
  deps: {
    db: Database;
    senders: Senders;
    publicUrl: () => string;
    /** Called once per run that found its delivery: action type, outcome, seconds sending. */
    observe: (actionType: string, outcome: DeliveryOutcome, seconds: number) => void;
  },
  payload: AlertDeliverPayload,
  run: JobRun,
): Promise<void> {
  const d = await loadDelivery(deps.db.pool, payload.deliveryId);
  if (!d) throw new PermanentJobError(`no delivery ${payload.deliveryId}`);
  if (d.status !== "pending") return deps.observe(d.actionType, "skipped", 0);
  if (d.rule.status !== "active") {
    await recordDeliveryAttempt(deps.db.pool, d.id, {
      ok: false,
      error: "the rule was deleted",
      final: true,
    });
    return deps.observe(d.actionType, "skipped", 0);
  }
  let target = d.target;
  const userId = d.actionType === "email" ? memberOfDeliveryTarget(d.target) : null;
  if (userId !== null) {
    // The stored actions passed parseRule when the rule was saved.
    const action = d.rule.actions[d.actionIndex] as Action | undefined;
    const recipient =
      action?.id === NOTIFY_EMAIL
        ? await currentRecipient(deps.db.pool, d.project.id, action, userId)
        : null;
    if (!recipient) {
      await skipDelivery(
        deps.db.pool,
        d.id,
        `email: user ${userId} is no longer a recipient of this rule (not a member who can see the project, inactive, or no longer named by the action)`,
      );
      return deps.observe(d.actionType, "skipped", 0);
    }
    target = recipient.email;
  }
  const secret =
    d.actionType === "webhooks"
      ? await findProjectPlugin(deps.db.pool, d.project.id, "webhooks").then((p) =>
          typeof p?.config.secret === "string" ? p.config.secret : null,
        )
      : null;
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  try {
    await deps.senders.send(
      { actionType: d.actionType, target, idempotencyKey: d.idempotencyKey, secret },
      contextOf(d, deps.publicUrl()),
    );
  } catch (error) {
    const permanent = error instanceof PermanentSendError;
    const final = permanent || run.final;
    const { type, message } = serializeError(error);
    // fetch says only "fetch failed"; the cause names the socket error.
    const cause = (error as { cause?: { code?: unknown } }).cause?.code;
    const text = `${d.actionType} ${hostOf(d)}: ${message ? `${type}: ${message}` : String(type)}${typeof cause === "string" ? ` (${cause})` : ""}`;
    await recordDeliveryAttempt(deps.db.pool, d.id, {
      ok: false,
      error: text.slice(0, MAX_ERROR_CHARS),
      final,
    });
    deps.observe(d.actionType, final ? "failed" : "retry", seconds());
    if (permanent) throw new PermanentJobError(text);
    throw error;
  }
  const sent = seconds();
  await recordDeliveryAttempt(deps.db.pool, d.id, { ok: true });
  deps.observe(d.actionType, "delivered", sent);
}

/** Where a delivery goes, without secrets in the path: a URL's host, or "email". */
function hostOf(d: DeliveryToSend): string {
  if (d.actionType === "email") return "email";
  try {
    return new URL(d.target).host;
  } catch {
    return "?";
  }
}
