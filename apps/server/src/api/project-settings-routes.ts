import {
  findProjectGroupingRules,
  type Organization,
  type ProjectGroupingRuleText,
  type ProjectWithOrganization,
  setProjectRetentionDays,
  updateProjectGroupingRules,
} from "@sluice/db";
import {
  CURRENT_GROUPING_CONFIG,
  checkGroupingRuleText,
  PREVIOUS_GROUPING_CONFIG,
} from "@sluice/grouping";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { organizationParam, projectParam } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";
import { serializeProject } from "./serializers.ts";

type RuleField = "fingerprintingRules" | "groupingEnhancements";
const RULE_FIELDS: RuleField[] = ["fingerprintingRules", "groupingEnhancements"];

/**
 * Settings Sentry's ProjectAdminSerializer refuses outright
 * (src/sentry/api/endpoints/project_details.py `validate_groupingConfig` and
 * its siblings): Sluice picks grouping configs itself, as Sentry does.
 */
const FIXED_FIELDS: Record<string, string> = {
  groupingConfig: "Grouping config cannot be manually set.",
  secondaryGroupingConfig: "Secondary grouping config cannot be manually set.",
  secondaryGroupingExpiry: "Secondary grouping expiry cannot be manually set.",
};

const projectGroupingJson = z.object({
  fingerprintingRules: z.string(),
  groupingEnhancements: z.string(),
  groupingConfig: z.string(),
  secondaryGroupingConfig: z.string().nullable(),
  secondaryGroupingExpiry: z.number().int(),
});

/** The project as GET and PUT answer it: Sentry's project with its grouping settings. */
function serializeProjectDetails(
  project: ProjectWithOrganization,
  org: Organization,
  rules: ProjectGroupingRuleText,
) {
  return {
    ...serializeProject(project, org),
    retentionDays: project.retentionDays ?? null,
    ...projectGroupingJson.parse({
      fingerprintingRules: rules.fingerprintingRules,
      groupingEnhancements: rules.groupingEnhancements,
      groupingConfig: CURRENT_GROUPING_CONFIG,
      // As Sentry's project serializer: the option's config and its expiry
      // in epoch seconds (0 when never set; migration 0015).
      secondaryGroupingConfig: project.secondaryGroupingExpiry ? PREVIOUS_GROUPING_CONFIG : null,
      secondaryGroupingExpiry: project.secondaryGroupingExpiry
        ? Math.floor(project.secondaryGroupingExpiry.getTime() / 1000)
        : 0,
    }),
  };
}

/**
 * Validates the grouping fields of a project update the way Sentry's
 * ProjectAdminSerializer does: each rule field a string (null or absent:
 * unchanged; '' clears it) that `checkGroupingRuleText` accepts. Returns the fields to write, or the errors
 * keyed by field as DRF reports them (`{"fingerprintingRules": ["…"]}`).
 */
function validateProjectUpdate(
  body: Record<string, unknown>,
):
  | { ok: true; update: Partial<ProjectGroupingRuleText> }
  | { ok: false; errors: Record<string, string[]> } {
  const errors: Record<string, string[]> = {};
  const update: Partial<ProjectGroupingRuleText> = {};
  for (const [field, message] of Object.entries(FIXED_FIELDS)) {
    if (body[field] !== undefined) errors[field] = [message];
  }
  for (const field of RULE_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    const problem = checkGroupingRuleText(field, value);
    if (problem) errors[field] = [problem.message];
    else update[field] = value as string;
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, update };
}

/**
 * `GET` and `PUT /api/0/projects/{org}/{project}/` (Sentry's
 * ProjectDetailsEndpoint). PUT takes the project's grouping rules,
 * `fingerprintingRules` and `groupingEnhancements` (docs:
 * https://docs.sentry.io/concepts/data-management/event-grouping/fingerprint-rules/
 * and …/stack-trace-rules/), and ignores fields Sluice does not keep, as
 * DRF ignores unknown ones; it answers the project with its settings, or
 * 400 with the errors by field. Workers apply new rules within
 * `GROUPING_RULES_TTL_MS` (5 s) to the events they group next.
 */
export function registerProjectSettingsRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/projects/:org/:project", requireScope("project:read"), async (c) => {
    const org = await organizationParam(c);
    const project = await projectParam(c);
    const rules = await findProjectGroupingRules(c.get("services").db.orm, project.id);
    return c.json(serializeProjectDetails(project, org, rules));
  });

  api.put("/api/0/projects/:org/:project", requireScope("project:write"), (c) => updateProject(c));
}

async function updateProject(c: Context<ApiEnv>) {
  const org = await organizationParam(c);
  const project = await projectParam(c);
  const body = await readJsonBody(c, z.record(z.string(), z.unknown()));
  const validated = validateProjectUpdate(body);
  const { db, config } = c.get("services");
  // Sluice's own field: a retention shorter than the instance's (docs/operations.md §9.2).
  const retention =
    body.retentionDays === undefined
      ? null
      : z.number().int().min(1).max(config.retentionDays).nullable().safeParse(body.retentionDays);
  if (!validated.ok || (retention && !retention.success)) {
    const errors = validated.ok ? {} : validated.errors;
    if (retention && !retention.success)
      errors.retentionDays = [
        `Enter a whole number of days from 1 to ${config.retentionDays}, or null.`,
      ];
    return c.json(errors, 400);
  }
  if (retention?.success) {
    await setProjectRetentionDays(db.pool, project.id, retention.data);
    project.retentionDays = retention.data;
  }
  const { orm } = db;
  const rules =
    Object.keys(validated.update).length > 0
      ? await updateProjectGroupingRules(orm, project.id, validated.update)
      : await findProjectGroupingRules(orm, project.id);
  return c.json(serializeProjectDetails(project, org, rules));
}
