import {
  type Action,
  type Condition,
  DISCORD_NOTIFY,
  EVENT_FREQUENCY,
  FIRST_SEEN,
  type Filter,
  LATEST_RELEASE_FILTER,
  LEVEL_FILTER,
  LEVEL_NUMBERS,
  MSTEAMS_NOTIFY,
  NOTIFY_EMAIL,
  NOTIFY_EVENT_SERVICE,
  REGRESSION,
  RULE_LIMITS,
  type RuleSpec,
  SLACK_NOTIFY,
  TAGGED_EVENT_FILTER,
  UNIQUE_USER_FREQUENCY,
} from "@sluice/alert-rules";

/**
 * The alert rule form of the web UI as flat fields (a form that posts
 * without JavaScript has no nested shapes): `name`, `environment`,
 * `actionMatch`, `filterMatch`, `frequency`, and numbered rows
 * `condition-N` (+ `-value`, `-interval`), `filter-N` (+ `-match`, `-key`,
 * `-value`) and `action-N` (+ `-target`). `ruleBodyOfForm` turns it into
 * the body the rules API takes, so both go through the same `parseRule`.
 */
export type RuleFormValues = Record<string, string>;

/** Rows of each kind a new rule's form shows; an edited rule gets one spare row beyond its own. */
const FORM_ROWS = 3;

/** The choices of each row's type select, Sentry's labels of the nodes (`label` of each class). */
export const CONDITION_CHOICES: [string, string][] = [
  [FIRST_SEEN, "A new issue is created"],
  [REGRESSION, "The issue changes state from resolved to unresolved"],
  [EVENT_FREQUENCY, "The issue is seen more than {value} times in {interval}"],
  [UNIQUE_USER_FREQUENCY, "The issue is seen by more than {value} users in {interval}"],
];
export const FILTER_CHOICES: [string, string][] = [
  [LEVEL_FILTER, "The event's level is {match} {value}"],
  [TAGGED_EVENT_FILTER, "The event's tag {key} {match} {value}"],
  [LATEST_RELEASE_FILTER, "The event is from the latest release"],
];
export const ACTION_CHOICES: [string, string][] = [
  [NOTIFY_EVENT_SERVICE, "Send a notification via the project's webhooks"],
  [NOTIFY_EMAIL, "Send an email to {addresses}"],
  [SLACK_NOTIFY, "Send to a Slack incoming webhook {URL}"],
  [DISCORD_NOTIFY, "Send to a Discord webhook {URL}"],
  [MSTEAMS_NOTIFY, "Send to a Microsoft Teams incoming webhook {URL}"],
];
/** TaggedEventFilter's and LevelFilter's `match` (sentry.rules.match.MatchType). */
export const MATCH_CHOICES: [string, string][] = [
  ["eq", "equals"],
  ["ne", "does not equal"],
  ["sw", "starts with"],
  ["ew", "ends with"],
  ["co", "contains"],
  ["nc", "does not contain"],
  ["is", "is set"],
  ["ns", "is not set"],
  ["gte", "greater than or equal to"],
  ["lte", "less than or equal to"],
];

/** Most characters any one form field may carry before it is cut (the rule's own bounds are smaller). */
const MAX_FIELD = RULE_LIMITS.emailTarget + 100;
/** Most rows of a kind a form may post (the rule's own bound is checked by `parseRule`). */
const MAX_ROWS = Math.max(RULE_LIMITS.conditions, RULE_LIMITS.filters) + 1;

/** The posted form's string fields, each cut to a bound (files and repeated fields dropped). */
export function formValues(body: Record<string, unknown>): RuleFormValues {
  const out: RuleFormValues = {};
  for (const [name, value] of Object.entries(body)) {
    if (typeof value === "string" && name.length <= 64) out[name] = value.slice(0, MAX_FIELD);
  }
  return out;
}

const get = (f: RuleFormValues, name: string) => (f[name] ?? "").trim();

/** Row numbers of `prefix-N` type fields that name a node, in order. */
function rows(f: RuleFormValues, prefix: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < MAX_ROWS; i++) if (get(f, `${prefix}-${i}`) !== "") out.push(i);
  return out;
}

/** A level name (`error`) as LevelFilter's number (`"40"`); anything else as given, for the schema to refuse. */
function levelNumber(name: string): string {
  const n = LEVEL_NUMBERS[name.toLowerCase()];
  return n === undefined ? name : String(n);
}

/**
 * The rules API body of a posted form (`POST /api/0/projects/{org}/{project}/rules/`
 * takes the same): empty rows are left out, numbers stay strings for the
 * schema to coerce, a level filter's level name becomes Sentry's number.
 */
export function ruleBodyOfForm(f: RuleFormValues): Record<string, unknown> {
  const conditions = rows(f, "condition").map((i) => {
    const id = get(f, `condition-${i}`);
    if (id !== EVENT_FREQUENCY && id !== UNIQUE_USER_FREQUENCY) return { id };
    const value = get(f, `condition-${i}-value`);
    return {
      id,
      value: value === "" ? undefined : value,
      interval: get(f, `condition-${i}-interval`),
    };
  });
  const filters = rows(f, "filter").map((i) => {
    const id = get(f, `filter-${i}`);
    const match = get(f, `filter-${i}-match`);
    const value = get(f, `filter-${i}-value`);
    if (id === LEVEL_FILTER) return { id, match, level: levelNumber(value) };
    if (id === TAGGED_EVENT_FILTER) {
      return { id, key: get(f, `filter-${i}-key`), match, ...(value ? { value } : {}) };
    }
    return { id };
  });
  const actions = rows(f, "action").map((i) => {
    const id = get(f, `action-${i}`);
    const target = get(f, `action-${i}-target`);
    if (id === NOTIFY_EVENT_SERVICE) return { id, service: "webhooks" };
    if (id === NOTIFY_EMAIL) return { id, targetType: "Addresses", targetIdentifier: target };
    if (id === SLACK_NOTIFY) {
      // The channel an API client named is kept (the form has no field for it).
      const channel = get(f, `action-${i}-channel`);
      return { id, webhook: target, ...(channel ? { channel } : {}) };
    }
    if (id === DISCORD_NOTIFY || id === MSTEAMS_NOTIFY) return { id, webhook: target };
    return { id };
  });
  const environment = get(f, "environment");
  return {
    name: get(f, "name"),
    environment: environment === "" ? null : environment,
    actionMatch: get(f, "actionMatch") || "all",
    filterMatch: get(f, "filterMatch") || "all",
    frequency: get(f, "frequency") || "30",
    conditions,
    filters,
    actions,
  };
}

function levelName(n: string): string {
  return Object.entries(LEVEL_NUMBERS).find(([, v]) => String(v) === n)?.[0] ?? n;
}

/** The form fields showing a stored rule, for its edit page. */
export function formOfRule(rule: RuleSpec): RuleFormValues {
  const f: RuleFormValues = {
    name: rule.name,
    environment: rule.environment ?? "",
    actionMatch: rule.actionMatch,
    filterMatch: rule.filterMatch,
    frequency: String(rule.frequency),
  };
  rule.conditions.forEach((c: Condition, i) => {
    f[`condition-${i}`] = c.id;
    if ("value" in c) {
      f[`condition-${i}-value`] = String(c.value);
      f[`condition-${i}-interval`] = c.interval;
    }
  });
  rule.filters.forEach((node: Filter, i) => {
    f[`filter-${i}`] = node.id;
    if (node.id === LEVEL_FILTER) {
      f[`filter-${i}-match`] = node.match;
      f[`filter-${i}-value`] = levelName(node.level);
    } else if (node.id === TAGGED_EVENT_FILTER) {
      f[`filter-${i}-match`] = node.match;
      f[`filter-${i}-key`] = node.key;
      f[`filter-${i}-value`] = node.value ?? "";
    }
  });
  rule.actions.forEach((a: Action, i) => {
    f[`action-${i}`] = a.id;
    if (a.id === NOTIFY_EMAIL) f[`action-${i}-target`] = String(a.targetIdentifier ?? "");
    if ("webhook" in a) f[`action-${i}-target`] = a.webhook;
    if (a.id === SLACK_NOTIFY && a.channel) f[`action-${i}-channel`] = a.channel;
  });
  return f;
}

/** How many rows of each kind the form shows for these values: its filled rows and one spare, at least `FORM_ROWS`. */
export function rowCounts(f: RuleFormValues): {
  conditions: number;
  filters: number;
  actions: number;
} {
  const count = (prefix: string, max: number) => {
    const used = rows(f, prefix);
    const last = used.length === 0 ? -1 : (used[used.length - 1] as number);
    return Math.min(max, Math.max(FORM_ROWS, last + 2));
  };
  return {
    conditions: count("condition", RULE_LIMITS.conditions),
    filters: count("filter", RULE_LIMITS.filters),
    actions: count("action", RULE_LIMITS.actions),
  };
}
