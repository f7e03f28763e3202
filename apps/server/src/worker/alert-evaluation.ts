import {
  type Action,
  counterNeeds,
  DISCORD_NOTIFY,
  type EventFacts,
  emailAddresses,
  evaluateConditions,
  inEnvironment,
  LATEST_RELEASE_FILTER,
  MSTEAMS_NOTIFY,
  NOTIFY_EMAIL,
  NOTIFY_EVENT_SERVICE,
  passesFilters,
  type RuleSpec,
  SLACK_NOTIFY,
  type Trigger,
  windowStart,
} from "@sluice/alert-rules";
import {
  type AlertCountAdd,
  type AlertRuleRow,
  addAlertCounts,
  alertCounterKey,
  findProjectPlugin,
  latestReleasesOf,
  listActiveRulesOf,
  recordAlertFiring,
} from "@sluice/db";
import type { NormalizedEvent } from "@sluice/protocol";
import type pg from "pg";
import { emailRecipientsOf, memberDeliveryTarget } from "../alert-targets.ts";

/** One event of an issue as grouping left it. */
type GroupedEvent = {
  issueId: number;
  projectId: number;
  event: NormalizedEvent;
  receivedAt: Date;
  userKey: string | null;
};

/**
 * What grouping one batch learned, the facts alert rules read: its events
 * with their issues, the issues it created, and those it regressed (each
 * with the time it had been resolved).
 */
export type GroupingFacts = {
  events: GroupedEvent[];
  created: Set<number>;
  regressed: Map<number, Date>;
};

/** One issue of the batch, with its events oldest first (by receive time). */
type GroupedIssue = {
  issueId: number;
  projectId: number;
  isNew: boolean;
  regressedFrom: Date | null;
  events: GroupedEvent[];
};

/**
 * Evaluates the projects' alert rules for the issues one batch grouped,
 * inside the grouping transaction (the issue rows are locked), from the
 * facts grouping already has: new issue, regression, and counters it keeps
 * per (rule, issue, window) in `alert_rule_counters`; no event is read.
 * A rule that fires records a firing under its unique (rule, issue,
 * trigger key) and one pending delivery per action target; deliveries are
 * sent by the alerts role (apps/server/src/alerts/). Since it is the same
 * transaction, a batch that is rolled back and run again fires nothing
 * twice, and one that commits has recorded its deliveries.
 *
 * Trigger keys: `first_seen`; `regression:{resolved at}`;
 * `frequency:{condition}:{window start}`; `none:{rate window}`.
 */
export async function evaluateAlerts(client: pg.PoolClient, facts: GroupingFacts): Promise<void> {
  const byIssue = new Map<number, GroupedIssue>();
  for (const e of facts.events) {
    const issue = byIssue.get(e.issueId) ?? {
      issueId: e.issueId,
      projectId: e.projectId,
      isNew: facts.created.has(e.issueId),
      regressedFrom: facts.regressed.get(e.issueId) ?? null,
      events: [],
    };
    issue.events.push(e);
    byIssue.set(e.issueId, issue);
  }
  const grouped = [...byIssue.values()];
  for (const issue of grouped)
    issue.events.sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime());
  if (grouped.length === 0) return;
  const projectIds = [...new Set(grouped.map((g) => g.projectId))];
  const rows = await listActiveRulesOf(client, projectIds);
  if (rows.length === 0) return;
  const rules = rows.map((row) => ({ row, spec: specOf(row) }));
  const latest = rules.some((r) => r.spec.filters.some((f) => f.id === LATEST_RELEASE_FILTER))
    ? await latestReleasesOf(client, projectIds)
    : new Map<number, string>();

  type Candidate = {
    rule: (typeof rules)[number];
    issue: GroupedIssue;
    events: (GroupedIssue["events"][number] & { facts: EventFacts })[];
  };
  const candidates: Candidate[] = [];
  const adds: AlertCountAdd[] = [];
  for (const issue of grouped) {
    const withFacts = issue.events.map((e) => ({
      ...e,
      facts: factsOf(e.event, e.receivedAt, e.userKey),
    }));
    for (const rule of rules) {
      if (rule.row.projectId !== issue.projectId) continue;
      const events = withFacts.filter((e) => inEnvironment(rule.spec, e.facts));
      if (events.length === 0) continue;
      candidates.push({ rule, issue, events });
      for (const need of dedupeNeeds(rule.spec)) {
        const windows = new Map<number, AlertCountAdd>();
        for (const e of events) {
          const start = windowStart(e.receivedAt, need.intervalSeconds);
          const add = windows.get(start.getTime()) ?? {
            ruleId: rule.row.id,
            issueId: issue.issueId,
            intervalSeconds: need.intervalSeconds,
            windowStart: start,
            events: 0,
            userKeys: [],
          };
          add.events++;
          if (e.userKey) add.userKeys.push(e.userKey);
          windows.set(start.getTime(), add);
        }
        adds.push(...windows.values());
      }
    }
  }
  const totals = await addAlertCounts(client, adds);
  const webhookUrls = new Map<number, string[]>();

  for (const { rule, issue, events } of candidates) {
    const last = events.at(-1) as Candidate["events"][number];
    const latestWindow = new Map<number, number>();
    for (const need of counterNeeds(rule.spec)) {
      const total = totals.get(
        alertCounterKey({
          ruleId: rule.row.id,
          issueId: issue.issueId,
          intervalSeconds: need.intervalSeconds,
          windowStart: windowStart(last.receivedAt, need.intervalSeconds),
        }),
      );
      latestWindow.set(
        need.conditionIndex,
        (need.kind === "events" ? total?.events : total?.users) ?? 0,
      );
    }
    const trigger = evaluateConditions(rule.spec, {
      isNew: issue.isNew,
      isRegression: issue.regressedFrom !== null,
      totals: latestWindow,
    });
    if (!trigger) continue;
    // Sentry applies filters to the event being processed: here the batch's
    // latest event of the issue that passes them.
    const release = latest.get(issue.projectId) ?? null;
    const passing = [...events].reverse().find((e) => passesFilters(rule.spec, e.facts, release));
    if (!passing) continue;
    const deliveries = await targetsOf(client, rule.spec.actions, issue.projectId, webhookUrls);
    await recordAlertFiring(client, {
      ruleId: rule.row.id,
      issueId: issue.issueId,
      triggerKey: triggerKey(trigger, rule.spec, issue, last.receivedAt),
      frequencyMinutes: rule.spec.frequency,
      eventId: passing.event.eventId,
      eventReceivedAt: passing.receivedAt,
      deliveries,
    });
  }
}

/** The stored rule as the evaluator reads it (the API validated it on the way in). */
function specOf(row: AlertRuleRow): RuleSpec {
  return {
    name: row.name,
    environment: row.environment,
    actionMatch: row.actionMatch as RuleSpec["actionMatch"],
    filterMatch: row.filterMatch as RuleSpec["filterMatch"],
    frequency: row.frequencyMinutes,
    conditions: row.conditions as RuleSpec["conditions"],
    filters: row.filters as RuleSpec["filters"],
    actions: row.actions as RuleSpec["actions"],
  };
}

/** One counter per interval: two conditions on the same interval read the same window. */
function dedupeNeeds(spec: RuleSpec) {
  const seen = new Map<number, ReturnType<typeof counterNeeds>[number]>();
  for (const need of counterNeeds(spec)) seen.set(need.intervalSeconds, need);
  return [...seen.values()];
}

function triggerKey(trigger: Trigger, spec: RuleSpec, issue: GroupedIssue, at: Date): string {
  switch (trigger.kind) {
    case "first_seen":
      return "first_seen";
    case "regression":
      return `regression:${(issue.regressedFrom as Date).toISOString()}`;
    case "frequency": {
      const need = counterNeeds(spec).find((n) => n.conditionIndex === trigger.conditionIndex);
      return `frequency:${trigger.conditionIndex}:${windowStart(at, need?.intervalSeconds ?? 60).toISOString()}`;
    }
    case "none":
      return `none:${windowStart(at, spec.frequency * 60).toISOString()}`;
  }
}

/** An event as rules see it; level, release, environment and logger are tags too, as in Sentry. */
function factsOf(event: NormalizedEvent, receivedAt: Date, userKey: string | null): EventFacts {
  const tags: [string, string][] = [...event.tags];
  const add = (key: string, value: string | null) => {
    if (value !== null && !tags.some(([k]) => k === key)) tags.push([key, value]);
  };
  add("level", event.level);
  add("release", event.release);
  add("environment", event.environment);
  add("logger", event.logger);
  return {
    level: event.level,
    release: event.release,
    environment: event.environment,
    tags,
    receivedAt,
    userKey,
  };
}

/**
 * The deliveries of a firing: one per action and target. The webhooks
 * service posts to each URL the project's webhooks plugin lists (none when
 * it is disabled or empty, as Sentry's plugin does); an `Addresses` email
 * goes to its addresses in one message; an email to members is one
 * delivery per member it names now (target `user:{id}`; a member named by
 * two email actions of the rule gets one), checked again when sent; chat
 * actions to their webhook URL.
 */
async function targetsOf(
  client: pg.PoolClient,
  actions: Action[],
  projectId: number,
  webhookUrls: Map<number, string[]>,
): Promise<{ actionIndex: number; actionType: string; target: string }[]> {
  const out: { actionIndex: number; actionType: string; target: string }[] = [];
  const mailed = new Set<number>();
  for (const [actionIndex, action] of actions.entries()) {
    switch (action.id) {
      case NOTIFY_EVENT_SERVICE: {
        let urls = webhookUrls.get(projectId);
        if (!urls) {
          const plugin = await findProjectPlugin(client, projectId, "webhooks");
          urls =
            plugin?.enabled && typeof plugin.config.urls === "string"
              ? plugin.config.urls.split("\n").filter(Boolean)
              : [];
          webhookUrls.set(projectId, urls);
        }
        for (const url of urls) out.push({ actionIndex, actionType: "webhooks", target: url });
        break;
      }
      case NOTIFY_EMAIL: {
        if (action.targetType === "Addresses") {
          const to = emailAddresses(action);
          if (to.length > 0) out.push({ actionIndex, actionType: "email", target: to.join(",") });
          break;
        }
        for (const r of await emailRecipientsOf(client, projectId, action)) {
          if (mailed.has(r.userId)) continue;
          mailed.add(r.userId);
          out.push({ actionIndex, actionType: "email", target: memberDeliveryTarget(r.userId) });
        }
        break;
      }
      case SLACK_NOTIFY:
        out.push({ actionIndex, actionType: "slack", target: action.webhook });
        break;
      case DISCORD_NOTIFY:
        out.push({ actionIndex, actionType: "discord", target: action.webhook });
        break;
      case MSTEAMS_NOTIFY:
        out.push({ actionIndex, actionType: "msteams", target: action.webhook });
        break;
    }
  }
  return out;
}
