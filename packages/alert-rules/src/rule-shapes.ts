import { z } from "zod";

/**
 * Sentry's issue alert rules as its REST API takes them
 * (`POST /api/0/projects/{org}/{project}/rules/`): the serializer of
 * getsentry/sentry `src/sentry/api/serializers/rest_framework/rule.py`
 * (`RuleSerializer`: name, environment, actionMatch, filterMatch, actions,
 * conditions, filters, frequency 5..43200 minutes) and the node ids and form
 * fields of `src/sentry/rules/conditions/*.py`, `src/sentry/rules/filters/*.py`
 * and `src/sentry/rules/actions/*.py`. Every string and list is bounded.
 */

export const FIRST_SEEN = "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition";
export const REGRESSION = "sentry.rules.conditions.regression_event.RegressionEventCondition";
export const EVENT_FREQUENCY = "sentry.rules.conditions.event_frequency.EventFrequencyCondition";
export const UNIQUE_USER_FREQUENCY =
  "sentry.rules.conditions.event_frequency.EventUniqueUserFrequencyCondition";

export const LEVEL_FILTER = "sentry.rules.filters.level.LevelFilter";
export const TAGGED_EVENT_FILTER = "sentry.rules.filters.tagged_event.TaggedEventFilter";
export const LATEST_RELEASE_FILTER = "sentry.rules.filters.latest_release.LatestReleaseFilter";

export const NOTIFY_EVENT_SERVICE =
  "sentry.rules.actions.notify_event_service.NotifyEventServiceAction";
export const NOTIFY_EMAIL = "sentry.mail.actions.NotifyEmailAction";
export const SLACK_NOTIFY = "sentry.integrations.slack.notify_action.SlackNotifyServiceAction";
export const DISCORD_NOTIFY =
  "sentry.integrations.discord.notify_action.DiscordNotifyServiceAction";
export const MSTEAMS_NOTIFY =
  "sentry.integrations.msteams.notify_action.MsTeamsNotifyServiceAction";

/**
 * Sentry's `standard_intervals` of `event_frequency.py`, in seconds: the
 * windows a frequency condition may count over.
 */
export const INTERVALS: Record<string, number> = {
  "1m": 60,
  "5m": 300,
  "15m": 900,
  "1h": 3_600,
  "1d": 86_400,
  "1w": 604_800,
  "30d": 2_592_000,
};

/** Sentry's LOG_LEVELS as LevelFilter numbers them (`sentry.constants`). */
export const LEVEL_NUMBERS: Record<string, number> = {
  sample: 0,
  debug: 10,
  info: 20,
  warning: 30,
  error: 40,
  fatal: 50,
};

/** Bounds on what a client may store in one rule. */
export const RULE_LIMITS = {
  name: 256,
  environment: 64,
  conditions: 20,
  filters: 20,
  actions: 10,
  tagKey: 200,
  tagValue: 200,
  webhookUrl: 2_048,
  emailAddresses: 20,
  emailTarget: 2_000,
  /** Active rules per project: every processed batch evaluates them all. */
  rulesPerProject: 100,
  /** Minutes between two firings of a rule for one issue (Sentry's bounds). */
  frequencyMin: 5,
  frequencyMax: 43_200,
  /** Largest count a frequency condition may name. */
  frequencyValue: 1_000_000_000,
} as const;

const count = z.coerce.number().int().min(0).max(RULE_LIMITS.frequencyValue);
const interval = z.enum(Object.keys(INTERVALS) as [string, ...string[]]);

const frequencyFields = {
  value: count,
  interval,
  // Only "count" is kept: "percent" compares with an earlier window, which
  // needs history the counters do not keep.
  comparisonType: z.literal("count").optional(),
};

export const conditionSchema = z.discriminatedUnion("id", [
  z.object({ id: z.literal(FIRST_SEEN) }),
  z.object({ id: z.literal(REGRESSION) }),
  z.object({ id: z.literal(EVENT_FREQUENCY), ...frequencyFields }),
  z.object({ id: z.literal(UNIQUE_USER_FREQUENCY), ...frequencyFields }),
]);
export type Condition = z.infer<typeof conditionSchema>;

/** TaggedEventFilter's `match` (sentry.rules.match.MatchType). */
const TAG_MATCHES = ["eq", "ne", "sw", "ew", "co", "nc", "is", "ns"] as const;

export const filterSchema = z.discriminatedUnion("id", [
  z.object({
    id: z.literal(LEVEL_FILTER),
    match: z.enum(["eq", "gte", "lte"]),
    level: z.enum(Object.values(LEVEL_NUMBERS).map(String) as [string, ...string[]]),
  }),
  z.object({
    id: z.literal(TAGGED_EVENT_FILTER),
    key: z.string().min(1).max(RULE_LIMITS.tagKey),
    match: z.enum(TAG_MATCHES),
    value: z.string().max(RULE_LIMITS.tagValue).optional(),
  }),
  z.object({ id: z.literal(LATEST_RELEASE_FILTER) }),
]);
export type Filter = z.infer<typeof filterSchema>;

const webhookUrl = z
  .url({ protocol: /^https?$/, error: "Not a valid URL." })
  .max(RULE_LIMITS.webhookUrl);

/**
 * Email targets, Sentry's `ActionTargetType` (`src/sentry/notifications/types.py`):
 * `Member` (`targetIdentifier`: the user id of a member of the rule's
 * organization, as Sentry's `get_user_from_identifier` reads it), `Team`
 * (a team id: the team's members), `IssueOwners` (Sluice has no ownership
 * rules or assignees, so this is always `fallthroughType`); and `Addresses`
 * (Sluice's own): a comma-separated list in `targetIdentifier`.
 */
export const EMAIL_TARGET_TYPES = ["Addresses", "IssueOwners", "Team", "Member"] as const;

/**
 * Sentry's `FallthroughChoiceType` (`src/sentry/notifications/types.py`):
 * who an `IssueOwners` email goes to when the issue has no owner. Left out,
 * Sentry takes `ActiveMembers` (`NotifyEmailAction.after`, `src/sentry/mail/actions.py`).
 */
export const FALLTHROUGH_TYPES = ["ActiveMembers", "AllMembers", "NoOne"] as const;
export type FallthroughType = (typeof FALLTHROUGH_TYPES)[number];

export const actionSchema = z.discriminatedUnion("id", [
  z.object({
    id: z.literal(NOTIFY_EVENT_SERVICE),
    service: z.literal("webhooks", { error: "Select a valid choice (Sluice offers webhooks)." }),
  }),
  z.object({
    id: z.literal(NOTIFY_EMAIL),
    targetType: z.enum(EMAIL_TARGET_TYPES),
    targetIdentifier: z.union([z.string().max(RULE_LIMITS.emailTarget), z.number()]).optional(),
    fallthroughType: z.string().max(64).optional(),
  }),
  // Sentry's chat actions name a workspace integration and a channel; Sluice
  // has no integrations, so they take the channel's incoming webhook URL.
  z.object({
    id: z.literal(SLACK_NOTIFY),
    webhook: webhookUrl,
    channel: z.string().max(200).optional(),
  }),
  z.object({ id: z.literal(DISCORD_NOTIFY), webhook: webhookUrl }),
  z.object({ id: z.literal(MSTEAMS_NOTIFY), webhook: webhookUrl }),
]);
export type Action = z.infer<typeof actionSchema>;

/** Most webhook URLs one project's webhooks plugin may list. */
export const MAX_WEBHOOK_URLS = 20;

/**
 * The webhooks plugin's `urls` field, Sentry's `validate_urls`
 * (src/sentry/plugins/sentry_webhooks/plugin.py): one URL per line, blank
 * lines dropped, each http(s); Sluice bounds their number and length.
 * Parses to the list of URLs.
 */
export const webhookUrlsSchema = z
  .string()
  .max(MAX_WEBHOOK_URLS * (RULE_LIMITS.webhookUrl + 1))
  .transform((value) =>
    value
      .split(/\r?\n/)
      .map((u) => u.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.url({ protocol: /^https?$/, error: "Not a valid URL." }).max(RULE_LIMITS.webhookUrl))
      .max(MAX_WEBHOOK_URLS, `At most ${MAX_WEBHOOK_URLS} URLs.`),
  );

const match = z.enum(["all", "any", "none"]);

/** A rule as stored and evaluated: Sentry's shape, validated and normalized. */
export type RuleSpec = {
  name: string;
  environment: string | null;
  actionMatch: "all" | "any" | "none";
  filterMatch: "all" | "any" | "none";
  frequency: number;
  conditions: Condition[];
  filters: Filter[];
  actions: Action[];
};

/** Field errors as Sentry's serializers give them: field → messages. */
export type RuleErrors = Record<string, string[]>;

const bodySchema = z.object({
  name: z.string().trim().min(1, "This field is required.").max(RULE_LIMITS.name),
  environment: z.string().max(RULE_LIMITS.environment).nullish(),
  actionMatch: match,
  filterMatch: match.nullish(),
  frequency: z.coerce
    .number()
    .int()
    .min(
      RULE_LIMITS.frequencyMin,
      `Ensure this value is greater than or equal to ${RULE_LIMITS.frequencyMin}.`,
    )
    .max(
      RULE_LIMITS.frequencyMax,
      `Ensure this value is less than or equal to ${RULE_LIMITS.frequencyMax}.`,
    )
    .default(30),
  conditions: z.array(z.unknown()).max(RULE_LIMITS.conditions).default([]),
  filters: z.array(z.unknown()).max(RULE_LIMITS.filters).nullish(),
  actions: z.array(z.unknown()).max(RULE_LIMITS.actions).default([]),
});

/**
 * Validates a rule body (POST, or PUT over the stored rule's fields) and
 * returns the rule or Sentry-style field errors: `{"actions": ["Must select
 * an action"]}`, `{"conditions": ["Invalid node. Could not find '…'"]}`.
 * Unknown node fields are dropped. An email to a `Member` or `Team` needs
 * an integer `targetIdentifier` here; whether it names a member or team of
 * the rule's project is the server's check, against the database.
 */
export function parseRule(
  body: unknown,
): { ok: true; rule: RuleSpec } | { ok: false; errors: RuleErrors } {
  const errors: RuleErrors = {};
  const add = (field: string, message: string) => {
    errors[field] = [...(errors[field] ?? []), message];
  };
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? "non_field_errors");
      add(
        field,
        issue.code === "invalid_type" && issue.input === undefined
          ? "This field is required."
          : issue.message,
      );
    }
  }
  // As Sentry's serializer, every field's errors at once: the node lists are
  // checked even when another field is wrong (a form shows them together).
  const raw: Record<string, unknown> =
    typeof body === "object" && body !== null ? Object.fromEntries(Object.entries(body)) : {};
  const listOf = (field: "conditions" | "filters" | "actions"): unknown[] => {
    if (parsed.success) return parsed.data[field] ?? [];
    const value = raw[field];
    return !errors[field] && Array.isArray(value) ? value : [];
  };
  const b = {
    conditions: listOf("conditions"),
    filters: listOf("filters"),
    actions: listOf("actions"),
    filterMatch: parsed.success ? parsed.data.filterMatch : raw.filterMatch,
  };
  const nodes = <T>(field: string, list: unknown[], schema: z.ZodType<T>): T[] =>
    list.flatMap((node) => {
      if (typeof node !== "object" || node === null || Array.isArray(node)) {
        add(
          field,
          `Incorrect type. Expected a mapping, but got ${Array.isArray(node) ? "list" : typeof node}`,
        );
        return [];
      }
      const id = (node as { id?: unknown }).id;
      if (id === undefined) {
        add(field, "Missing attribute 'id'");
        return [];
      }
      const result = schema.safeParse(node);
      if (result.success) return [result.data];
      const idError = result.error.issues.some((i) => i.path[0] === "id");
      add(
        field,
        idError
          ? `Invalid node. Could not find '${String(id).slice(0, 200)}'`
          : `${result.error.issues[0]?.path.join(".") ?? "node"}: ${result.error.issues[0]?.message}`,
      );
      return [];
    });
  const conditions = nodes("conditions", b.conditions, conditionSchema);
  const filters = nodes("filters", b.filters ?? [], filterSchema);
  const actions = nodes("actions", b.actions, actionSchema);
  if (b.conditions.length === 0 && !errors.conditions) add("conditions", "Must select a condition");
  if (b.actions.length === 0 && !errors.actions) add("actions", "Must select an action");
  if (filters.length > 0 && !b.filterMatch) {
    add("filterMatch", "Must select a filter match (all, any, none) if filters are supplied");
  }
  for (const action of actions) {
    if (action.id !== NOTIFY_EMAIL) continue;
    const problem = emailTargetProblem(action);
    if (problem) add("actions", problem);
  }
  if (!parsed.success || Object.keys(errors).length > 0) return { ok: false, errors };
  const d = parsed.data;
  return {
    ok: true,
    rule: {
      name: d.name,
      environment: d.environment ?? null,
      actionMatch: d.actionMatch,
      filterMatch: d.filterMatch ?? "all",
      frequency: d.frequency,
      conditions,
      filters,
      actions,
    },
  };
}

const address = z.email();

/**
 * The addresses of an `Addresses` email action (comma or whitespace
 * separated, at most 20); empty when any is not an address.
 */
export function emailAddresses(action: Extract<Action, { id: typeof NOTIFY_EMAIL }>): string[] {
  const list = String(action.targetIdentifier ?? "")
    .split(/[,\s]+/)
    .filter(Boolean);
  if (list.length > RULE_LIMITS.emailAddresses) return [];
  return list.every((a) => address.safeParse(a).success) ? list : [];
}

type EmailAction = Extract<Action, { id: typeof NOTIFY_EMAIL }>;

/**
 * What is wrong with an email action's target on its own, in the words of
 * Sentry's `MemberTeamForm` (`src/sentry/mail/forms/member_team.py`), or null.
 */
function emailTargetProblem(action: EmailAction): string | null {
  switch (action.targetType) {
    case "Addresses":
      return emailAddresses(action).length === 0
        ? "targetIdentifier: enter one or more email addresses, separated by commas"
        : null;
    case "Member":
    case "Team": {
      const raw = action.targetIdentifier;
      if (raw === undefined || raw === "" || raw === "None")
        return "targetIdentifier: You need to specify a Team or Member.";
      return emailTargetId(action) === null ? "targetIdentifier must be an integer" : null;
    }
    case "IssueOwners":
      return action.fallthroughType === undefined ||
        (FALLTHROUGH_TYPES as readonly string[]).includes(action.fallthroughType)
        ? null
        : `fallthroughType: Select a valid choice (${FALLTHROUGH_TYPES.join(", ")}).`;
  }
}

/** The user id (`Member`) or team id (`Team`) an email action names; null for other targets. */
export function emailTargetId(action: EmailAction): number | null {
  if (action.targetType !== "Member" && action.targetType !== "Team") return null;
  const text = String(action.targetIdentifier ?? "").trim();
  if (!/^[1-9]\d{0,15}$/.test(text)) return null;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : null;
}

/** The fallthrough of an `IssueOwners` email: its `fallthroughType`, else Sentry's `ActiveMembers`. */
export function emailFallthrough(action: EmailAction): FallthroughType {
  const value = action.fallthroughType;
  return (FALLTHROUGH_TYPES as readonly string[]).includes(value ?? "")
    ? (value as FallthroughType)
    : "ActiveMembers";
}

/** Sentry's labels of each node (the `label` of its class), for the `name` the API shows. */
export function nodeLabel(node: Condition | Filter | Action): string {
  switch (node.id) {
    case FIRST_SEEN:
      return "A new issue is created";
    case REGRESSION:
      return "The issue changes state from resolved to unresolved";
    case EVENT_FREQUENCY:
      return `The issue is seen more than ${node.value} times in ${node.interval}`;
    case UNIQUE_USER_FREQUENCY:
      return `The issue is seen by more than ${node.value} users in ${node.interval}`;
    case LEVEL_FILTER:
      return `The event's level is ${node.match === "eq" ? "equal to" : node.match === "gte" ? "greater than or equal to" : "less than or equal to"} ${levelName(Number(node.level))}`;
    case TAGGED_EVENT_FILTER:
      return `The event's tags match ${node.key} ${node.match} ${node.value ?? ""}`.trimEnd();
    case LATEST_RELEASE_FILTER:
      return "The event is from the latest release";
    case NOTIFY_EVENT_SERVICE:
      return `Send a notification via ${node.service}`;
    case NOTIFY_EMAIL:
      return node.targetType === "IssueOwners"
        ? `Send a notification to IssueOwners and if none can be found then send a notification to ${emailFallthrough(node)}`
        : `Send a notification to ${node.targetType}`;
    case SLACK_NOTIFY:
      return "Send a notification to a Slack incoming webhook";
    case DISCORD_NOTIFY:
      return "Send a notification to a Discord webhook";
    case MSTEAMS_NOTIFY:
      return "Send a notification to a Microsoft Teams incoming webhook";
  }
}

function levelName(n: number): string {
  return Object.entries(LEVEL_NUMBERS).find(([, v]) => v === n)?.[0] ?? String(n);
}
