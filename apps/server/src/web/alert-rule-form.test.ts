import {
  EVENT_FREQUENCY,
  FIRST_SEEN,
  LEVEL_FILTER,
  NOTIFY_EMAIL,
  NOTIFY_EVENT_SERVICE,
  parseRule,
  SLACK_NOTIFY,
  TAGGED_EVENT_FILTER,
} from "@sluice/alert-rules";
import { describe, expect, it } from "vitest";
import { formOfRule, formValues, rowCounts, ruleBodyOfForm } from "./alert-rule-form.ts";

const form = {
  name: " Checkout errors ",
  environment: "production",
  actionMatch: "any",
  filterMatch: "all",
  frequency: "15",
  "condition-0": FIRST_SEEN,
  "condition-1": "",
  "condition-2": EVENT_FREQUENCY,
  "condition-2-value": "100",
  "condition-2-interval": "1h",
  "filter-0": LEVEL_FILTER,
  "filter-0-match": "gte",
  "filter-0-value": "error",
  "filter-1": TAGGED_EVENT_FILTER,
  "filter-1-key": "shard",
  "filter-1-match": "eq",
  "filter-1-value": "s1",
  "action-0": NOTIFY_EVENT_SERVICE,
  "action-0-target": "ignored",
  "action-1": NOTIFY_EMAIL,
  "action-1-target": "ops@example.com, dev@example.com",
  "action-2": SLACK_NOTIFY,
  "action-2-target": "https://hooks.slack.test/T1",
  "action-2-channel": "#ops",
};

describe("the alert rule form", () => {
  it("becomes the body the rules API validates, empty rows left out", () => {
    const parsed = parseRule(ruleBodyOfForm(form));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.rule).toEqual({
      name: "Checkout errors",
      environment: "production",
      actionMatch: "any",
      filterMatch: "all",
      frequency: 15,
      conditions: [{ id: FIRST_SEEN }, { id: EVENT_FREQUENCY, value: 100, interval: "1h" }],
      filters: [
        { id: LEVEL_FILTER, match: "gte", level: "40" },
        { id: TAGGED_EVENT_FILTER, key: "shard", match: "eq", value: "s1" },
      ],
      actions: [
        { id: NOTIFY_EVENT_SERVICE, service: "webhooks" },
        {
          id: NOTIFY_EMAIL,
          targetType: "Addresses",
          targetIdentifier: "ops@example.com, dev@example.com",
        },
        { id: SLACK_NOTIFY, webhook: "https://hooks.slack.test/T1", channel: "#ops" },
      ],
    });
  });

  it("shows a stored rule as the same form, with a spare row of each kind", () => {
    const parsed = parseRule(ruleBodyOfForm(form));
    if (!parsed.ok) throw new Error("invalid");
    const again = parseRule(ruleBodyOfForm(formOfRule(parsed.rule)));
    expect(again).toEqual(parsed);
    expect(rowCounts(formOfRule(parsed.rule))).toEqual({ conditions: 3, filters: 3, actions: 4 });
  });

  it("gives the schema's field errors for a bad form", () => {
    const parsed = parseRule(
      ruleBodyOfForm({
        name: "",
        frequency: "1",
        "condition-0": EVENT_FREQUENCY,
        "condition-0-interval": "1h",
        "filter-0": LEVEL_FILTER,
        "filter-0-match": "eq",
        "filter-0-value": "loud",
        "action-0": SLACK_NOTIFY,
        "action-0-target": "not a url",
      }),
    );
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    // Every field's errors at once, as Sentry's serializer gives them.
    expect(Object.keys(parsed.errors).sort()).toEqual([
      "actions",
      "conditions",
      "filters",
      "frequency",
      "name",
    ]);
    const nodes = parseRule(
      ruleBodyOfForm({
        name: "n",
        "condition-0": EVENT_FREQUENCY,
        "condition-0-interval": "1h",
        "filter-0": LEVEL_FILTER,
        "filter-0-match": "eq",
        "filter-0-value": "loud",
        "action-0": SLACK_NOTIFY,
        "action-0-target": "not a url",
      }),
    );
    expect(nodes.ok).toBe(false);
    if (nodes.ok) return;
    expect(Object.keys(nodes.errors).sort()).toEqual(["actions", "conditions", "filters"]);
    expect(nodes.errors.actions?.[0]).toMatch(/Not a valid URL/);
  });

  it("keeps only bounded string fields of a posted form", () => {
    const values = formValues({
      name: "x".repeat(10_000),
      file: new Blob(["a"]),
      ["k".repeat(65)]: "v",
    });
    expect(Object.keys(values)).toEqual(["name"]);
    expect(values.name?.length).toBeLessThan(10_000);
  });
});
