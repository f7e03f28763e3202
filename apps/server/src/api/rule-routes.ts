import {
  type Action,
  type Condition,
  type Filter,
  nodeLabel,
  parseRule,
  RULE_LIMITS,
  type RuleErrors,
  webhookUrlsSchema,
} from "@sluice/alert-rules";
import {
  type AlertRuleRow,
  createAlertRule,
  deleteAlertRule,
  findAlertRule,
  findProjectPlugin,
  listAlertRules,
  type ProjectWithOrganization,
  saveWebhookPlugin,
  updateAlertRule,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { checkRuleTargets, checkWebhookUrls } from "../alert-targets.ts";
import type { ApiEnv } from "./api-env.ts";
import { notFound } from "./api-error.ts";
import { idParam, organizationAndAccess, projectParam } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";

/**
 * A rule as Sentry's API shows it (getsentry/sentry
 * `src/sentry/api/serializers/models/rule.py`): id as a string, each node
 * with its `name`, `actionMatch`, `filterMatch`, `frequency`, `environment`,
 * the project slugs. Sluice adds what delivery did: `lastError` and
 * `deliveries` (sent, failed, pending, last delivered).
 */
function serializeRule(rule: AlertRuleRow, project: ProjectWithOrganization) {
  const named = (nodes: unknown[]) =>
    (nodes as (Condition | Filter | Action)[]).map((node) => ({ ...node, name: nodeLabel(node) }));
  return {
    id: String(rule.id),
    conditions: named(rule.conditions),
    filters: named(rule.filters),
    actions: named(rule.actions),
    actionMatch: rule.actionMatch,
    filterMatch: rule.filterMatch,
    frequency: rule.frequencyMinutes,
    name: rule.name,
    dateCreated: rule.createdAt.toISOString(),
    owner: null,
    createdBy: null,
    environment: rule.environment,
    projects: [project.slug],
    status: "active",
    snooze: false,
    lastError: rule.lastError
      ? { message: rule.lastError, date: rule.lastErrorAt?.toISOString() ?? null }
      : null,
    deliveries: {
      sent: rule.deliveriesSent,
      failed: rule.deliveriesFailed,
      pending: rule.deliveriesPending,
      lastDelivered: rule.lastDeliveredAt?.toISOString() ?? null,
    },
  };
}

/** A 400 with Sentry's field errors, plus the `detail` every Sluice error carries. */
function invalid(c: Context<ApiEnv>, errors: RuleErrors) {
  const [field, messages] = Object.entries(errors)[0] ?? ["body", ["invalid"]];
  return c.json({ detail: `${field}: ${messages[0]}`, ...errors }, 400);
}

/** The rule body: any JSON object; `parseRule` checks its fields. */
const anyObject = z.record(z.string(), z.unknown());

/** `:ruleId` of the project, or 404. */
async function ruleParam(c: Context<ApiEnv>, project: ProjectWithOrganization) {
  const id = idParam(c, "ruleId");
  const rule = id === null ? null : await findAlertRule(c.get("services").db.pool, project.id, id);
  if (!rule) throw notFound("rule");
  return rule;
}

/**
 * Issue alert rules as Sentry serves them (getsentry/sentry
 * `src/sentry/api/endpoints/project_rules.py`, `project_rule_details.py`):
 * list and create under `/api/0/projects/{org}/{project}/rules/`, read,
 * replace and delete under `…/rules/{rule_id}/`. Reads need
 * `project:read`, writes `project:write`. Bad rules are 400 with Sentry's
 * field errors (`{"actions": ["Must select an action"]}`); a project holds
 * at most 100 active rules. Also the legacy webhooks plugin's settings
 * (`registerWebhookPluginRoutes`).
 */
export function registerRuleRoutes(api: Hono<ApiEnv>): void {
  const base = "/api/0/projects/:org/:project/rules";
  api.get(base, requireScope("project:read"), async (c) => {
    const project = await projectParam(c);
    const rules = await listAlertRules(c.get("services").db.pool, project.id);
    return c.json(rules.map((r) => serializeRule(r, project)));
  });

  api.post(base, requireScope("project:write"), async (c) => {
    const project = await projectParam(c);
    const { db, config } = c.get("services");
    const parsed = parseRule(await readJsonBody(c, anyObject));
    if (!parsed.ok) return invalid(c, parsed.errors);
    const targets = await checkRuleTargets(
      db.pool,
      project.id,
      parsed.rule,
      config.alerts.allowPrivateDestinations,
    );
    if (Object.keys(targets).length > 0) return invalid(c, targets);
    const rule = await createAlertRule(
      db.pool,
      project.id,
      { ...parsed.rule, frequencyMinutes: parsed.rule.frequency },
      RULE_LIMITS.rulesPerProject,
    );
    if (!rule) {
      return invalid(c, {
        non_field_errors: [`A project may have at most ${RULE_LIMITS.rulesPerProject} rules.`],
      });
    }
    return c.json(serializeRule(rule, project), 200);
  });

  api.get(`${base}/:ruleId`, requireScope("project:read"), async (c) => {
    const project = await projectParam(c);
    return c.json(serializeRule(await ruleParam(c, project), project));
  });

  api.put(`${base}/:ruleId`, requireScope("project:write"), async (c) => {
    const project = await projectParam(c);
    const { db, config } = c.get("services");
    const existing = await ruleParam(c, project);
    const body = await readJsonBody(c, anyObject);
    // Sentry's PUT takes the whole rule; fields left out keep their values.
    const parsed = parseRule({
      name: existing.name,
      environment: existing.environment,
      actionMatch: existing.actionMatch,
      filterMatch: existing.filterMatch,
      frequency: existing.frequencyMinutes,
      conditions: existing.conditions,
      filters: existing.filters,
      actions: existing.actions,
      ...body,
    });
    if (!parsed.ok) return invalid(c, parsed.errors);
    const targets = await checkRuleTargets(
      db.pool,
      project.id,
      parsed.rule,
      config.alerts.allowPrivateDestinations,
    );
    if (Object.keys(targets).length > 0) return invalid(c, targets);
    const rule = await updateAlertRule(db.pool, project.id, existing.id, {
      ...parsed.rule,
      frequencyMinutes: parsed.rule.frequency,
    });
    if (!rule) throw notFound("rule");
    return c.json(serializeRule(rule, project));
  });

  api.delete(`${base}/:ruleId`, requireScope("project:write"), async (c) => {
    const project = await projectParam(c);
    const rule = await ruleParam(c, project);
    if (!(await deleteAlertRule(c.get("services").db.pool, project.id, rule.id))) {
      throw notFound("rule");
    }
    return c.body(null, 202);
  });

  registerWebhookPluginRoutes(api);
}

const webhookConfig = z.object({ urls: webhookUrlsSchema.optional() });

/**
 * The webhooks plugin as `GET /api/0/projects/{org}/{project}/plugins/webhooks/`
 * shows it (Sentry's PluginWithConfigSerializer, trimmed): its id, name,
 * whether it is enabled and its one config field `urls`. Sluice signs each
 * request with the project's `secret` (HMAC-SHA256), shown only to tokens
 * that may write the project.
 */
function serializeWebhookPlugin(
  plugin: { enabled: boolean; config: Record<string, unknown> } | null,
  showSecret: boolean,
) {
  const urls = typeof plugin?.config.urls === "string" ? plugin.config.urls : "";
  return {
    id: "webhooks",
    slug: "webhooks",
    name: "WebHooks",
    shortName: "WebHooks",
    type: "notification",
    enabled: plugin?.enabled ?? false,
    isHidden: false,
    canDisable: true,
    hasConfiguration: true,
    config: [
      {
        name: "urls",
        label: "Callback URLs",
        type: "textarea",
        help: "Enter callback URLs to POST new events to (one per line).",
        placeholder: "https://sentry.io/callback/url",
        required: false,
        value: urls,
        defaultValue: null,
      },
    ],
    ...(showSecret && typeof plugin?.config.secret === "string"
      ? { signingSecret: plugin.config.secret }
      : {}),
  };
}

/**
 * The legacy webhooks plugin (getsentry/sentry
 * `src/sentry/api/endpoints/project_plugin_details.py`): GET shows it, PUT
 * `{"urls": "one per line"}` saves the URLs and enables it, POST enables,
 * DELETE disables. The first save makes the project's signing secret.
 */
function registerWebhookPluginRoutes(api: Hono<ApiEnv>): void {
  const path = "/api/0/projects/:org/:project/plugins/webhooks";
  // The signing secret is shown only to callers who may change the plugin in this organization.
  const canWrite = async (c: Context<ApiEnv>) =>
    (await organizationAndAccess(c)).access.scopes.has("project:write");
  api.get(path, requireScope("project:read"), async (c) => {
    const project = await projectParam(c);
    const plugin = await findProjectPlugin(c.get("services").db.pool, project.id, "webhooks");
    return c.json(serializeWebhookPlugin(plugin, await canWrite(c)));
  });
  const save = async (c: Context<ApiEnv>, change: { enabled: boolean; urls?: string[] }) => {
    const project = await projectParam(c);
    const saved = await saveWebhookPlugin(c.get("services").db.pool, project.id, change);
    return c.json(serializeWebhookPlugin(saved, true));
  };
  api.put(path, requireScope("project:write"), async (c) => {
    const body = await readJsonBody(c, webhookConfig);
    const { config } = c.get("services");
    const refused = await checkWebhookUrls(body.urls ?? [], config.alerts.allowPrivateDestinations);
    if (refused.length > 0) return c.json({ detail: `urls: ${refused[0]}`, urls: refused }, 400);
    return save(c, { enabled: true, ...(body.urls ? { urls: body.urls } : {}) });
  });
  api.post(path, requireScope("project:write"), (c) => save(c, { enabled: true }));
  api.delete(path, requireScope("project:write"), async (c) => {
    await save(c, { enabled: false });
    return c.body(null, 204);
  });
}
