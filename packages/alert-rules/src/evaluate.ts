import {
  type Condition,
  EVENT_FREQUENCY,
  FIRST_SEEN,
  type Filter,
  INTERVALS,
  LATEST_RELEASE_FILTER,
  LEVEL_FILTER,
  LEVEL_NUMBERS,
  REGRESSION,
  type RuleSpec,
  TAGGED_EVENT_FILTER,
  UNIQUE_USER_FREQUENCY,
} from "./rule-shapes.ts";

/** What a rule sees of one event: its level, release, environment, tags, time and user. */
export type EventFacts = {
  level: string;
  release: string | null;
  environment: string | null;
  /** The event's tags; `level`, `release` and `environment` are tags too, as in Sentry. */
  tags: [string, string][];
  receivedAt: Date;
  /** The user as `issue_users` keys it (`id:…`, `email:…`), or null. */
  userKey: string | null;
};

/** One counter a frequency condition reads: events or distinct users of an issue per window. */
export type CounterNeed = {
  conditionIndex: number;
  kind: "events" | "users";
  intervalSeconds: number;
};

/** The counters `rule` reads, one per frequency condition. */
export function counterNeeds(rule: RuleSpec): CounterNeed[] {
  return rule.conditions.flatMap((c, conditionIndex) =>
    c.id === EVENT_FREQUENCY || c.id === UNIQUE_USER_FREQUENCY
      ? [
          {
            conditionIndex,
            kind: c.id === EVENT_FREQUENCY ? ("events" as const) : ("users" as const),
            intervalSeconds: INTERVALS[c.interval] as number,
          },
        ]
      : [],
  );
}

/**
 * The start of the window of `intervalSeconds` that holds `at`: windows are
 * fixed (tumbling), aligned on the Unix epoch, so every worker puts an event
 * in the same one without asking the others.
 */
export function windowStart(at: Date, intervalSeconds: number): Date {
  const ms = intervalSeconds * 1000;
  return new Date(Math.floor(at.getTime() / ms) * ms);
}

/** Whether the rule looks at the event at all: its environment, when it names one. */
export function inEnvironment(rule: RuleSpec, event: EventFacts): boolean {
  return rule.environment === null || event.environment === rule.environment;
}

/**
 * Whether the event passes the rule's filters under `filterMatch` (all,
 * any, none), as Sentry's rule processor applies them: no filters pass.
 */
export function passesFilters(
  rule: RuleSpec,
  event: EventFacts,
  latestRelease: string | null,
): boolean {
  if (rule.filters.length === 0) return true;
  const results = rule.filters.map((f) => passesFilter(f, event, latestRelease));
  if (rule.filterMatch === "any") return results.some(Boolean);
  if (rule.filterMatch === "none") return !results.some(Boolean);
  return results.every(Boolean);
}

function passesFilter(filter: Filter, event: EventFacts, latestRelease: string | null): boolean {
  switch (filter.id) {
    case LEVEL_FILTER: {
      // sentry/rules/filters/level.py compares Sentry's level numbers.
      const have = LEVEL_NUMBERS[event.level] ?? 0;
      const want = Number(filter.level);
      return filter.match === "eq"
        ? have === want
        : filter.match === "gte"
          ? have >= want
          : have <= want;
    }
    case TAGGED_EVENT_FILTER:
      return matchTag(filter, event.tags);
    case LATEST_RELEASE_FILTER:
      return event.release !== null && event.release === latestRelease;
  }
}

/**
 * sentry/rules/filters/tagged_event.py: keys and values compared lowercased;
 * `is`/`ns`: the tag is set or not; `ne`/`nc` pass when no value of the key
 * matches.
 */
function matchTag(
  filter: Extract<Filter, { id: typeof TAGGED_EVENT_FILTER }>,
  tags: [string, string][],
): boolean {
  const key = filter.key.toLowerCase();
  const values = tags.filter(([k]) => k.toLowerCase() === key).map(([, v]) => v.toLowerCase());
  const want = (filter.value ?? "").toLowerCase();
  switch (filter.match) {
    case "is":
      return values.length > 0;
    case "ns":
      return values.length === 0;
    case "eq":
      return values.includes(want);
    case "ne":
      return !values.includes(want);
    case "sw":
      return values.some((v) => v.startsWith(want));
    case "ew":
      return values.some((v) => v.endsWith(want));
    case "co":
      return values.some((v) => v.includes(want));
    case "nc":
      return !values.some((v) => v.includes(want));
  }
}

/** Why a rule fired: it names the trigger window that makes the firing unique. */
export type Trigger =
  | { kind: "first_seen" }
  | { kind: "regression" }
  | { kind: "frequency"; conditionIndex: number }
  | { kind: "none" };

/** What the worker knows of an issue after grouping a batch, for one rule. */
export type RuleInput = {
  isNew: boolean;
  isRegression: boolean;
  /** Each frequency condition's count in the current window, after this batch. */
  totals: Map<number, number>;
};

/**
 * Whether the rule's conditions pass under `actionMatch` (all, any, none),
 * and the trigger that names the firing: a new issue first, then a
 * regression, then the first frequency condition past its value. Filters
 * are checked apart (`passesFilters`). Frequency conditions pass when the
 * window's count is more than `value` (Sentry's "more than N times").
 */
export function evaluateConditions(rule: RuleSpec, input: RuleInput): Trigger | null {
  const passing = rule.conditions.map((c, i) => conditionPasses(c, i, input));
  const passes =
    rule.actionMatch === "all"
      ? passing.every(Boolean)
      : rule.actionMatch === "any"
        ? passing.some(Boolean)
        : !passing.some(Boolean);
  if (!passes) return null;
  if (rule.actionMatch === "none") return { kind: "none" };
  const first = (id: string) => rule.conditions.findIndex((c, i) => c.id === id && passing[i]);
  if (first(FIRST_SEEN) >= 0) return { kind: "first_seen" };
  if (first(REGRESSION) >= 0) return { kind: "regression" };
  const index = rule.conditions.findIndex(
    (c, i) => (c.id === EVENT_FREQUENCY || c.id === UNIQUE_USER_FREQUENCY) && passing[i],
  );
  return index >= 0 ? { kind: "frequency", conditionIndex: index } : null;
}

function conditionPasses(c: Condition, index: number, input: RuleInput): boolean {
  switch (c.id) {
    case FIRST_SEEN:
      return input.isNew;
    case REGRESSION:
      return input.isRegression;
    case EVENT_FREQUENCY:
    case UNIQUE_USER_FREQUENCY:
      return (input.totals.get(index) ?? 0) > c.value;
  }
}
