import { describe, expect, it } from "vitest";
import {
  type AlertContext,
  EVENT_FREQUENCY,
  type EventFacts,
  emailFallthrough,
  emailTargetId,
  evaluateConditions,
  FIRST_SEEN,
  LATEST_RELEASE_FILTER,
  LEVEL_FILTER,
  legacyWebhookBody,
  nodeLabel,
  parseRule,
  passesFilters,
  REGRESSION,
  type RuleSpec,
  TAGGED_EVENT_FILTER,
  UNIQUE_USER_FREQUENCY,
  windowStart,
} from "../src/index.ts";

const WEBHOOKS = {
  id: "sentry.rules.actions.notify_event_service.NotifyEventServiceAction",
  service: "webhooks",
};
const base = {
  name: "r",
  actionMatch: "all",
  frequency: 30,
  conditions: [{ id: FIRST_SEEN }],
  actions: [WEBHOOKS],
};

function spec(over: Partial<RuleSpec>): RuleSpec {
  const parsed = parseRule(base);
  if (!parsed.ok) throw new Error("base rule refused");
  return { ...parsed.rule, ...over };
}

const event = (over: Partial<EventFacts> = {}): EventFacts => ({
  level: "error",
  release: "1.0",
  environment: "production",
  tags: [
    ["level", "error"],
    ["release", "1.0"],
    ["browser", "Firefox 120"],
  ],
  receivedAt: new Date("2026-01-01T00:00:30Z"),
  userKey: null,
  ...over,
});

describe("parseRule", () => {
  it("accepts Sentry's rule shapes and drops fields it does not know", () => {
    const parsed = parseRule({
      ...base,
      conditions: [{ id: EVENT_FREQUENCY, value: "5", interval: "1m", extra: 1 }],
      filterMatch: "any",
      filters: [{ id: TAGGED_EVENT_FILTER, key: "browser", match: "sw", value: "firefox" }],
      environment: "production",
    });
    expect(parsed).toMatchObject({
      ok: true,
      rule: {
        environment: "production",
        conditions: [{ id: EVENT_FREQUENCY, value: 5, interval: "1m" }],
        filterMatch: "any",
      },
    });
    if (parsed.ok) expect(parsed.rule.conditions[0]).not.toHaveProperty("extra");
  });

  it("answers Sentry's field errors", () => {
    const errors = (body: Record<string, unknown>) => {
      const parsed = parseRule(body);
      return parsed.ok ? null : parsed.errors;
    };
    expect(errors({ ...base, actions: [] })).toEqual({ actions: ["Must select an action"] });
    expect(errors({ ...base, conditions: [] })).toEqual({
      conditions: ["Must select a condition"],
    });
    expect(errors({ ...base, conditions: [{ id: "x" }] })).toEqual({
      conditions: ["Invalid node. Could not find 'x'"],
    });
    expect(errors({ ...base, conditions: [{}] })).toEqual({
      conditions: ["Missing attribute 'id'"],
    });
    expect(errors({ ...base, conditions: ["x"] })?.conditions?.[0]).toMatch(/Expected a mapping/);
    expect(errors({ ...base, frequency: 4 })?.frequency?.[0]).toMatch(/greater than or equal to 5/);
    expect(errors({ ...base, frequency: 43_201 })?.frequency?.[0]).toMatch(/less than or equal/);
    expect(errors({ ...base, name: undefined })).toEqual({ name: ["This field is required."] });
    expect(errors({ ...base, filters: [{ id: LATEST_RELEASE_FILTER }] })?.filterMatch?.[0]).toMatch(
      /Must select a filter match/,
    );
    expect(
      errors({ ...base, conditions: [{ id: EVENT_FREQUENCY, value: 5, interval: "2m" }] })
        ?.conditions,
    ).toHaveLength(1);
    expect(
      errors({
        ...base,
        actions: [
          {
            id: "sentry.mail.actions.NotifyEmailAction",
            targetType: "Addresses",
            targetIdentifier: "not an address",
          },
        ],
      })?.actions,
    ).toHaveLength(1);
    expect(
      errors({ ...base, conditions: Array(21).fill({ id: FIRST_SEEN }) })?.conditions,
    ).toBeDefined();
  });

  it("takes Sentry's email targets to members, and checks their shape", () => {
    const errors = (body: Record<string, unknown>) => {
      const parsed = parseRule(body);
      return parsed.ok ? null : parsed.errors;
    };
    const email = (fields: Record<string, unknown>) => ({
      ...base,
      actions: [{ id: "sentry.mail.actions.NotifyEmailAction", ...fields }],
    });
    expect(errors(email({ targetType: "Member", targetIdentifier: 7 }))).toBeNull();
    expect(errors(email({ targetType: "Team", targetIdentifier: "12" }))).toBeNull();
    expect(errors(email({ targetType: "IssueOwners" }))).toBeNull();
    expect(errors(email({ targetType: "IssueOwners", fallthroughType: "AllMembers" }))).toBeNull();
    expect(errors(email({ targetType: "Member" }))?.actions?.[0]).toMatch(
      /You need to specify a Team or Member/,
    );
    expect(errors(email({ targetType: "Team", targetIdentifier: "None" }))?.actions?.[0]).toMatch(
      /You need to specify/,
    );
    expect(errors(email({ targetType: "Member", targetIdentifier: "x1" }))?.actions?.[0]).toMatch(
      /must be an integer/,
    );
    expect(
      errors(email({ targetType: "IssueOwners", fallthroughType: "Everyone" }))?.actions?.[0],
    ).toMatch(/fallthroughType/);
    const parsed = parseRule(email({ targetType: "IssueOwners" }));
    expect(parsed.ok && parsed.rule.actions[0]).toMatchObject({ targetType: "IssueOwners" });
    const action = parsed.ok ? parsed.rule.actions[0] : undefined;
    if (action?.id !== "sentry.mail.actions.NotifyEmailAction") throw new Error("not an email");
    // Sentry's default when fallthroughType is left out (NotifyEmailAction.after).
    expect(emailFallthrough(action)).toBe("ActiveMembers");
    expect(nodeLabel(action)).toMatch(/then send a notification to ActiveMembers$/);
    expect(emailTargetId({ ...action, targetType: "Member", targetIdentifier: "42" })).toBe(42);
    expect(emailTargetId({ ...action, targetType: "Member", targetIdentifier: "0" })).toBeNull();
    expect(emailTargetId({ ...action, targetType: "Addresses", targetIdentifier: "4" })).toBeNull();
  });
});

describe("evaluateConditions", () => {
  const input = { isNew: false, isRegression: false, totals: new Map<number, number>() };
  it("follows actionMatch and names the trigger", () => {
    const rule = spec({
      actionMatch: "any",
      conditions: [
        { id: FIRST_SEEN },
        { id: REGRESSION },
        { id: EVENT_FREQUENCY, value: 5, interval: "1m" },
      ],
    });
    expect(evaluateConditions(rule, input)).toBeNull();
    expect(evaluateConditions(rule, { ...input, isNew: true })).toEqual({ kind: "first_seen" });
    expect(evaluateConditions(rule, { ...input, isRegression: true })).toEqual({
      kind: "regression",
    });
    // "More than 5": 5 does not pass, 6 does.
    expect(evaluateConditions(rule, { ...input, totals: new Map([[2, 5]]) })).toBeNull();
    expect(evaluateConditions(rule, { ...input, totals: new Map([[2, 6]]) })).toEqual({
      kind: "frequency",
      conditionIndex: 2,
    });
    const all = { ...rule, actionMatch: "all" as const };
    expect(
      evaluateConditions(all, { ...input, isNew: true, totals: new Map([[2, 6]]) }),
    ).toBeNull();
    const none = { ...rule, actionMatch: "none" as const };
    expect(evaluateConditions(none, input)).toEqual({ kind: "none" });
    expect(evaluateConditions(none, { ...input, isNew: true })).toBeNull();
    const users = spec({ conditions: [{ id: UNIQUE_USER_FREQUENCY, value: 1, interval: "1h" }] });
    expect(evaluateConditions(users, { ...input, totals: new Map([[0, 2]]) })).toEqual({
      kind: "frequency",
      conditionIndex: 0,
    });
  });

  it("puts events in fixed windows aligned on the epoch", () => {
    expect(windowStart(new Date("2026-01-01T00:00:59.999Z"), 60).toISOString()).toBe(
      "2026-01-01T00:00:00.000Z",
    );
    expect(windowStart(new Date("2026-01-01T00:01:00Z"), 60).toISOString()).toBe(
      "2026-01-01T00:01:00.000Z",
    );
  });
});

describe("passesFilters", () => {
  it("compares levels as Sentry numbers them, tags lowercased, and the latest release", () => {
    const level = (match: "eq" | "gte" | "lte", n: string) =>
      spec({ filters: [{ id: LEVEL_FILTER, match, level: n }] });
    expect(passesFilters(level("gte", "40"), event(), null)).toBe(true);
    expect(passesFilters(level("gte", "50"), event(), null)).toBe(false);
    expect(passesFilters(level("lte", "30"), event({ level: "warning" }), null)).toBe(true);
    const tag = (match: "eq" | "sw" | "ns" | "ne", value?: string) =>
      spec({ filters: [{ id: TAGGED_EVENT_FILTER, key: "Browser", match, value }] });
    expect(passesFilters(tag("sw", "firefox"), event(), null)).toBe(true);
    expect(passesFilters(tag("eq", "chrome"), event(), null)).toBe(false);
    expect(passesFilters(tag("ne", "chrome"), event(), null)).toBe(true);
    expect(passesFilters(tag("ns"), event(), null)).toBe(false);
    const latest = spec({ filters: [{ id: LATEST_RELEASE_FILTER }] });
    expect(passesFilters(latest, event(), "1.0")).toBe(true);
    expect(passesFilters(latest, event(), "2.0")).toBe(false);
    const two = spec({
      filterMatch: "any",
      filters: [{ id: LATEST_RELEASE_FILTER }, { id: LEVEL_FILTER, match: "eq", level: "40" }],
    });
    expect(passesFilters(two, event(), "2.0")).toBe(true);
    expect(passesFilters({ ...two, filterMatch: "all" }, event(), "2.0")).toBe(false);
    expect(passesFilters({ ...two, filterMatch: "none" }, event(), "2.0")).toBe(false);
  });
});

describe("legacyWebhookBody", () => {
  it("has the fields of Sentry's webhooks plugin", () => {
    const ctx: AlertContext = {
      rule: { id: 1, name: "r" },
      organizationSlug: "sluice",
      project: { id: 2, slug: "web", name: "Web" },
      issue: {
        id: 3,
        shortId: "WEB-3",
        title: "Error: x",
        culprit: "app.js",
        level: "error",
        count: 4,
        userCount: 1,
      },
      event: {
        eventId: "a".repeat(32),
        level: "error",
        release: null,
        environment: null,
        message: "x",
        logger: null,
        tags: [["level", "error"]],
        payload: { platform: "node" },
      },
      reason: "A new issue is created",
      issueUrl: "https://sluice.example/organizations/sluice/issues/3/",
    };
    expect(legacyWebhookBody(ctx)).toEqual({
      id: "3",
      project: "web",
      project_name: "Web",
      project_slug: "web",
      logger: null,
      level: "error",
      culprit: "app.js",
      message: "x",
      url: "https://sluice.example/organizations/sluice/issues/3/?referrer=webhooks_plugin",
      triggering_rules: ["r"],
      event: {
        platform: "node",
        tags: [["level", "error"]],
        event_id: "a".repeat(32),
        id: "a".repeat(32),
      },
    });
  });
});
