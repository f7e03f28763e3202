import {
  type Action,
  type Condition,
  type Filter,
  INTERVALS,
  LEVEL_NUMBERS,
  nodeLabel,
  parseRule,
  RULE_LIMITS,
  type RuleErrors,
  type RuleSpec,
} from "@sluice/alert-rules";
import {
  type AlertRuleRow,
  createAlertRule,
  deleteAlertRule,
  findAlertRule,
  listAlertRulesOfProjects,
  type Project,
  updateAlertRule,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { checkRuleTargets } from "../alert-targets.ts";
import {
  ACTION_CHOICES,
  CONDITION_CHOICES,
  FILTER_CHOICES,
  formOfRule,
  formValues,
  MATCH_CHOICES,
  type RuleFormValues,
  rowCounts,
  ruleBodyOfForm,
} from "./alert-rule-form.ts";
import { CsrfField, formatCount, RelativeTime } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { type OrgPage, orgPage, requirePageScope } from "./web-lookups.ts";

/**
 * Issue alert rules in the web UI, at Sentry's URLs (static/app/routes.tsx):
 * the list `/organizations/{org}/alerts/rules/`, a new rule
 * `/organizations/{org}/alerts/new/issue/` (`/alerts/{project}/new/`
 * redirects there), a rule's page `…/alerts/rules/{project}/{ruleId}/details/`
 * and its edit form `…/alerts/rules/{project}/{ruleId}/`, plus Sluice's
 * delete confirmation `…/{ruleId}/delete/`. Reading needs `project:read`,
 * writing `project:write`, as the rules API (api/rule-routes.ts) does; a
 * rule is saved through the API's own `parseRule`.
 */

/** A stored rule as the form and the labels read it (the API validated it when it was saved). */
function specOf(rule: AlertRuleRow): RuleSpec {
  return {
    name: rule.name,
    environment: rule.environment,
    actionMatch: rule.actionMatch as RuleSpec["actionMatch"],
    filterMatch: rule.filterMatch as RuleSpec["filterMatch"],
    frequency: rule.frequencyMinutes,
    conditions: rule.conditions as Condition[],
    filters: rule.filters as Filter[],
    actions: rule.actions as Action[],
  };
}

/** Most rules the list shows at once (100 projects' worth at 10 each; a project holds at most 100). */
const MAX_LISTED_RULES = 1_000;

const rulesUrl = (org: string) => `/organizations/${org}/alerts/rules/`;
const ruleUrl = (org: string, project: string, id: number) =>
  `/organizations/${org}/alerts/rules/${project}/${id}/`;

function projectOf(page: OrgPage, slug: string | undefined): Project {
  const project = page.projects.find((p) => p.slug === slug);
  if (!project) {
    throw new PageError(
      404,
      "There is no such project in this organization, or you cannot see it.",
    );
  }
  return project;
}

/** `:project` and `:ruleId` of the page, or a 404 (another organization's rule included). */
async function rulePage(c: Context<WebEnv>) {
  const page = await orgPage(c);
  requirePageScope(page.access, "project:read");
  const project = projectOf(page, c.req.param("project"));
  const raw = c.req.param("ruleId") ?? "";
  const id = /^\d{1,12}$/.test(raw) ? Number(raw) : 0;
  const rule = id > 0 ? await findAlertRule(c.get("services").db.pool, project.id, id) : null;
  if (!rule) throw new PageError(404, "This project has no such alert rule.");
  return { ...page, project, rule };
}

function Deliveries({ rule }: { rule: AlertRuleRow }) {
  return (
    <>{`${formatCount(rule.deliveriesSent)} sent, ${formatCount(rule.deliveriesFailed)} failed, ${formatCount(rule.deliveriesPending)} pending`}</>
  );
}

function LastError({ rule }: { rule: AlertRuleRow }) {
  if (!rule.lastError) return <span class="muted">none</span>;
  return (
    <span>
      <span class="field-error">{rule.lastError}</span>{" "}
      {rule.lastErrorAt ? <RelativeTime date={rule.lastErrorAt} /> : null}
    </span>
  );
}

async function listPage(c: Context<WebEnv>) {
  const page = await orgPage(c);
  const { org, access, projects } = page;
  requirePageScope(access, "project:read");
  const viewer = c.get("viewer");
  const chosen = c.req.query("project");
  const shown = chosen
    ? projects.filter((p) => String(p.id) === chosen || p.slug === chosen)
    : projects;
  const rules = await listAlertRulesOfProjects(
    c.get("services").db.pool,
    shown.map((p) => p.id),
    MAX_LISTED_RULES + 1,
  );
  const more = rules.length > MAX_LISTED_RULES;
  if (more) rules.pop();
  const slugOf = new Map(projects.map((p) => [p.id, p.slug]));
  const canWrite = access.scopes.has("project:write");
  return render(
    c,
    <Layout title={`Alert rules — ${org.name}`} viewer={viewer} org={org} section="alerts">
      <h1>Alert rules</h1>
      <form method="get" action={rulesUrl(org.slug)} class="toolbar">
        <span class="field">
          <label for="project">Project</label>
          <select id="project" name="project">
            <option value="">All projects you can see</option>
            {projects.map((p) => (
              <option value={p.slug} selected={p.slug === chosen || String(p.id) === chosen}>
                {p.slug}
              </option>
            ))}
          </select>
        </span>
        <button type="submit">Show rules</button>
      </form>
      <div class="actions">
        {canWrite ? (
          <a class="button primary" href={`/organizations/${org.slug}/alerts/new/issue/`}>
            Create alert rule
          </a>
        ) : (
          <p class="muted">Your role cannot create alert rules here (it needs project:write).</p>
        )}
      </div>
      {rules.length === 0 ? (
        <p class="panel empty">No alert rules yet.</p>
      ) : (
        <table aria-label="Alert rules">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Project</th>
              <th scope="col">Conditions</th>
              <th scope="col">Last fired</th>
              <th scope="col">Deliveries</th>
              <th scope="col">Last error</th>
            </tr>
          </thead>
          <tbody>
            {rules.map((rule) => {
              const slug = slugOf.get(rule.projectId) ?? "";
              const spec = specOf(rule);
              return (
                <tr>
                  <td>
                    <a href={`${ruleUrl(org.slug, slug, rule.id)}details/`}>{rule.name}</a>
                  </td>
                  <td>{slug}</td>
                  <td>
                    {spec.conditions
                      .map(nodeLabel)
                      .join(rule.actionMatch === "any" ? "; or " : "; and ")}
                  </td>
                  <td>
                    <RelativeTime date={rule.lastFiredAt} />
                  </td>
                  <td>
                    <Deliveries rule={rule} />
                  </td>
                  <td>
                    <LastError rule={rule} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {more ? (
        <p class="muted">{`The first ${MAX_LISTED_RULES} rules are shown; choose a project to see its own.`}</p>
      ) : null}
    </Layout>,
  );
}

/** Messages of one field, tied to its control by id. */
function FieldErrors({ id, errors }: { id: string; errors: string[] | undefined }) {
  if (!errors || errors.length === 0) return null;
  return (
    <ul class="field-errors" id={id}>
      {errors.map((m) => (
        <li>{m}</li>
      ))}
    </ul>
  );
}

function Select({
  id,
  label,
  value,
  choices,
  empty,
}: {
  id: string;
  label: string;
  value: string;
  choices: [string, string][];
  empty?: string;
}) {
  return (
    <span class="field">
      <label for={id}>{label}</label>
      <select id={id} name={id}>
        {empty !== undefined ? <option value="">{empty}</option> : null}
        {choices.map(([v, text]) => (
          <option value={v} selected={v === value}>
            {text}
          </option>
        ))}
      </select>
    </span>
  );
}

function Text({
  id,
  label,
  value,
  type = "text",
  size,
}: {
  id: string;
  label: string;
  value: string;
  type?: string;
  size?: number;
}) {
  return (
    <span class="field">
      <label for={id}>{label}</label>
      <input
        type={type}
        id={id}
        name={id}
        value={value}
        size={size}
        maxlength={RULE_LIMITS.emailTarget}
      />
    </span>
  );
}

const INTERVAL_CHOICES = Object.keys(INTERVALS).map((k): [string, string] => [k, k]);
const LEVEL_HINT = Object.keys(LEVEL_NUMBERS).join(", ");

type FormProps = {
  action: string;
  values: RuleFormValues;
  errors: RuleErrors;
  /** The project select of a new rule; null when the rule's project is fixed. */
  projects: Project[] | null;
  csrf: string;
  submit: string;
};

/** The rule form: every field has a label; a field's errors are its description and mark it invalid. */
function RuleForm({ action, values, errors, projects, csrf, submit }: FormProps) {
  const v = (name: string) => values[name] ?? "";
  const n = rowCounts(values);
  const described = (field: string) =>
    errors[field] ? { "aria-describedby": `${field}-errors`, "aria-invalid": "true" } : {};
  const all = Object.entries(errors);
  return (
    <form method="post" action={action} class="rule-form" novalidate>
      <CsrfField token={csrf} />
      {all.length > 0 ? (
        <div class="notice error" role="alert">
          <p>The rule was not saved:</p>
          <ul>
            {all.map(([field, messages]) => (
              <li>{`${field}: ${messages.join(" ")}`}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <FieldErrors id="non_field_errors-errors" errors={errors.non_field_errors} />
      <fieldset>
        <legend>Rule</legend>
        <div class="toolbar">
          <span class="field grow">
            <label for="name">Rule name</label>
            <input
              type="text"
              id="name"
              name="name"
              value={v("name")}
              maxlength={RULE_LIMITS.name}
              {...described("name")}
            />
          </span>
          {projects ? (
            <span class="field">
              <label for="project">Project</label>
              <select id="project" name="project" {...described("project")}>
                {projects.map((p) => (
                  <option value={p.slug} selected={p.slug === v("project")}>
                    {p.slug}
                  </option>
                ))}
              </select>
            </span>
          ) : null}
          <span class="field">
            <label for="environment">Environment</label>
            <input
              type="text"
              id="environment"
              name="environment"
              value={v("environment")}
              placeholder="all environments"
              maxlength={RULE_LIMITS.environment}
              {...described("environment")}
            />
          </span>
        </div>
        <FieldErrors id="name-errors" errors={errors.name} />
        <FieldErrors id="project-errors" errors={errors.project} />
        <FieldErrors id="environment-errors" errors={errors.environment} />
      </fieldset>
      <fieldset {...described("conditions")}>
        <legend>When</legend>
        <Select
          id="actionMatch"
          label="Fire when"
          value={v("actionMatch") || "all"}
          choices={[
            ["all", "all of these conditions are met"],
            ["any", "any of these conditions is met"],
            ["none", "none of these conditions is met"],
          ]}
        />
        <FieldErrors id="actionMatch-errors" errors={errors.actionMatch} />
        {Array.from({ length: n.conditions }, (_, i) => (
          <div class="toolbar row">
            <Select
              id={`condition-${i}`}
              label={`Condition ${i + 1}`}
              value={v(`condition-${i}`)}
              choices={CONDITION_CHOICES}
              empty="(none)"
            />
            <Text
              id={`condition-${i}-value`}
              label={`Condition ${i + 1} value`}
              value={v(`condition-${i}-value`)}
              type="number"
              size={8}
            />
            <Select
              id={`condition-${i}-interval`}
              label={`Condition ${i + 1} interval`}
              value={v(`condition-${i}-interval`) || "1h"}
              choices={INTERVAL_CHOICES}
            />
          </div>
        ))}
        <FieldErrors id="conditions-errors" errors={errors.conditions} />
      </fieldset>
      <fieldset {...described("filters")}>
        <legend>If</legend>
        <Select
          id="filterMatch"
          label="Filters"
          value={v("filterMatch") || "all"}
          choices={[
            ["all", "all of these filters match"],
            ["any", "any of these filters matches"],
            ["none", "none of these filters matches"],
          ]}
        />
        <FieldErrors id="filterMatch-errors" errors={errors.filterMatch} />
        {Array.from({ length: n.filters }, (_, i) => (
          <div class="toolbar row">
            <Select
              id={`filter-${i}`}
              label={`Filter ${i + 1}`}
              value={v(`filter-${i}`)}
              choices={FILTER_CHOICES}
              empty="(none)"
            />
            <Text
              id={`filter-${i}-key`}
              label={`Filter ${i + 1} tag`}
              value={v(`filter-${i}-key`)}
              size={12}
            />
            <Select
              id={`filter-${i}-match`}
              label={`Filter ${i + 1} match`}
              value={v(`filter-${i}-match`) || "eq"}
              choices={MATCH_CHOICES}
            />
            <Text
              id={`filter-${i}-value`}
              label={`Filter ${i + 1} value`}
              value={v(`filter-${i}-value`)}
              size={14}
            />
          </div>
        ))}
        <p class="muted">{`A level filter's value is a level: ${LEVEL_HINT}.`}</p>
        <FieldErrors id="filters-errors" errors={errors.filters} />
      </fieldset>
      <fieldset {...described("actions")}>
        <legend>Then</legend>
        {Array.from({ length: n.actions }, (_, i) => (
          <div class="toolbar row">
            <Select
              id={`action-${i}`}
              label={`Action ${i + 1}`}
              value={v(`action-${i}`)}
              choices={ACTION_CHOICES}
              empty="(none)"
            />
            <span class="field grow">
              <label for={`action-${i}-target`}>{`Action ${i + 1} target`}</label>
              <input
                type="text"
                id={`action-${i}-target`}
                name={`action-${i}-target`}
                value={v(`action-${i}-target`)}
                placeholder="addresses, or the incoming webhook URL"
                maxlength={RULE_LIMITS.emailTarget}
              />
            </span>
            {v(`action-${i}-channel`) ? (
              <input type="hidden" name={`action-${i}-channel`} value={v(`action-${i}-channel`)} />
            ) : null}
          </div>
        ))}
        <FieldErrors id="actions-errors" errors={errors.actions} />
        <p class="muted">
          The webhooks action posts to the URLs on the project's WebHooks settings page; the target
          is the email addresses (comma-separated) or the chat's incoming webhook URL.
        </p>
        <div class="toolbar">
          <span class="field">
            <label for="frequency">Action interval (minutes)</label>
            <input
              type="number"
              id="frequency"
              name="frequency"
              value={v("frequency") || "30"}
              min={RULE_LIMITS.frequencyMin}
              max={RULE_LIMITS.frequencyMax}
              {...described("frequency")}
            />
          </span>
        </div>
        <FieldErrors id="frequency-errors" errors={errors.frequency} />
      </fieldset>
      <button type="submit" class="primary">
        {submit}
      </button>
    </form>
  );
}

async function newRulePage(c: Context<WebEnv>, values?: RuleFormValues, errors: RuleErrors = {}) {
  const page = await orgPage(c);
  requirePageScope(page.access, "project:write");
  const viewer = c.get("viewer");
  if (!viewer) throw new PageError(403, "Sign in first.");
  if (page.projects.length === 0) throw new PageError(404, "There is no project to alert on yet.");
  const initial = values ?? { project: c.req.query("project") ?? "", frequency: "30" };
  return render(
    c,
    <Layout title="New alert rule" viewer={viewer} org={page.org} section="alerts">
      <p>
        <a href={rulesUrl(page.org.slug)}>All alert rules</a>
      </p>
      <h1>New alert rule</h1>
      <RuleForm
        action={`/organizations/${page.org.slug}/alerts/new/issue/`}
        values={initial}
        errors={errors}
        projects={page.projects}
        csrf={viewer.csrfToken}
        submit="Save rule"
      />
    </Layout>,
    Object.keys(errors).length > 0 ? 400 : 200,
  );
}

async function editRulePage(c: Context<WebEnv>, values?: RuleFormValues, errors: RuleErrors = {}) {
  const { org, access, project, rule } = await rulePage(c);
  requirePageScope(access, "project:write");
  const viewer = c.get("viewer");
  if (!viewer) throw new PageError(403, "Sign in first.");
  return render(
    c,
    <Layout title={`Edit ${rule.name}`} viewer={viewer} org={org} section="alerts">
      <p>
        <a href={`${ruleUrl(org.slug, project.slug, rule.id)}details/`}>{`Back to ${rule.name}`}</a>
      </p>
      <h1>{`Edit alert rule ${rule.name}`}</h1>
      <p class="muted">{`Project ${project.slug}`}</p>
      <RuleForm
        action={ruleUrl(org.slug, project.slug, rule.id)}
        values={values ?? formOfRule(specOf(rule))}
        errors={errors}
        projects={null}
        csrf={viewer.csrfToken}
        submit="Save rule"
      />
    </Layout>,
    Object.keys(errors).length > 0 ? 400 : 200,
  );
}

function NodeList({ label, nodes }: { label: string; nodes: (Condition | Filter | Action)[] }) {
  if (nodes.length === 0) return <p class="muted">{`No ${label.toLowerCase()}.`}</p>;
  return (
    <ul aria-label={label}>
      {nodes.map((node) => (
        <li>
          {nodeLabel(node)}
          {"webhook" in node ? <span class="muted mono">{` ${node.webhook}`}</span> : null}
          {"targetIdentifier" in node ? (
            <span class="muted">{` ${String(node.targetIdentifier ?? "")}`}</span>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

async function detailsPage(c: Context<WebEnv>) {
  const { org, access, project, rule } = await rulePage(c);
  const viewer = c.get("viewer");
  const spec = specOf(rule);
  const base = ruleUrl(org.slug, project.slug, rule.id);
  const canWrite = access.scopes.has("project:write");
  return render(
    c,
    <Layout title={rule.name} viewer={viewer} org={org} section="alerts">
      <p>
        <a href={rulesUrl(org.slug)}>All alert rules</a>
      </p>
      <h1>{rule.name}</h1>
      {c.req.query("saved") === "1" ? (
        <p class="notice" role="status">
          The rule is saved.
        </p>
      ) : null}
      <dl class="facts panel" aria-label="Rule">
        <dt>Project</dt>
        <dd>{project.slug}</dd>
        <dt>Environment</dt>
        <dd>{rule.environment ?? "all environments"}</dd>
        <dt>Action interval</dt>
        <dd>{`${rule.frequencyMinutes} minutes`}</dd>
        <dt>Last fired</dt>
        <dd>
          <RelativeTime date={rule.lastFiredAt} />
        </dd>
        <dt>Deliveries</dt>
        <dd>
          <Deliveries rule={rule} />
          {rule.lastDeliveredAt ? (
            <>
              {" · last delivered "}
              <RelativeTime date={rule.lastDeliveredAt} />
            </>
          ) : null}
        </dd>
        <dt>Last error</dt>
        <dd>
          <LastError rule={rule} />
        </dd>
      </dl>
      <h2>{`When ${spec.actionMatch} of these conditions`}</h2>
      <NodeList label="Conditions" nodes={spec.conditions} />
      <h2>{`If ${spec.filterMatch} of these filters`}</h2>
      <NodeList label="Filters" nodes={spec.filters} />
      <h2>Then</h2>
      <NodeList label="Actions" nodes={spec.actions} />
      {canWrite ? (
        <div class="actions">
          <a class="button" href={base}>
            Edit rule
          </a>
          <a class="button" href={`${base}delete/`}>
            Delete rule
          </a>
          <a
            class="button"
            href={`/settings/${org.slug}/projects/${project.slug}/plugins/webhooks/`}
          >
            Webhook URLs of {project.slug}
          </a>
        </div>
      ) : null}
    </Layout>,
  );
}

/** Parses and saves a posted rule form: a redirect to the rule, or the form again with its errors (400). */
async function saveRule(
  c: Context<WebEnv>,
  project: Project,
  existing: AlertRuleRow | null,
  values: RuleFormValues,
): Promise<{ rule: AlertRuleRow } | { errors: RuleErrors }> {
  const parsed = parseRule(ruleBodyOfForm(values));
  if (!parsed.ok) return { errors: parsed.errors };
  const { db, config } = c.get("services");
  const { pool } = db;
  const targets = await checkRuleTargets(
    pool,
    project.id,
    parsed.rule,
    config.alerts.allowPrivateDestinations,
  );
  if (Object.keys(targets).length > 0) return { errors: targets };
  const fields = { ...parsed.rule, frequencyMinutes: parsed.rule.frequency };
  const rule = existing
    ? await updateAlertRule(pool, project.id, existing.id, fields)
    : await createAlertRule(pool, project.id, fields, RULE_LIMITS.rulesPerProject);
  if (rule) return { rule };
  if (existing) throw new PageError(404, "This project has no such alert rule.");
  return {
    errors: {
      non_field_errors: [`A project may have at most ${RULE_LIMITS.rulesPerProject} rules.`],
    },
  };
}

/** Registers the alert rule pages (see the module comment for the URLs). */
export function registerAlertRulePages(web: Hono<WebEnv>): void {
  web.get("/organizations/:org/alerts", async (c) => {
    const { org } = await orgPage(c);
    return c.redirect(rulesUrl(org.slug), 302);
  });
  web.get("/organizations/:org/alerts/rules", (c) => listPage(c));
  web.get("/organizations/:org/alerts/new/issue", (c) => newRulePage(c));
  web.post("/organizations/:org/alerts/new/issue", requireCsrf(), async (c) => {
    const page = await orgPage(c);
    requirePageScope(page.access, "project:write");
    const values = formValues(await c.req.parseBody());
    const project = page.projects.find((p) => p.slug === values.project);
    if (!project) {
      return newRulePage(c, values, { project: ["Select a project you can see."] });
    }
    const saved = await saveRule(c, project, null, values);
    if ("errors" in saved) return newRulePage(c, values, saved.errors);
    return c.redirect(
      `${ruleUrl(page.org.slug, project.slug, saved.rule.id)}details/?saved=1`,
      303,
    );
  });
  web.get("/organizations/:org/alerts/:project/new", async (c) => {
    const page = await orgPage(c);
    const project = projectOf(page, c.req.param("project"));
    return c.redirect(
      `/organizations/${page.org.slug}/alerts/new/issue/?project=${encodeURIComponent(project.slug)}`,
      302,
    );
  });
  const one = "/organizations/:org/alerts/rules/:project/:ruleId{[0-9]+}";
  web.get(`${one}/details`, (c) => detailsPage(c));
  web.get(one, (c) => editRulePage(c));
  web.post(one, requireCsrf(), async (c) => {
    const { org, access, project, rule } = await rulePage(c);
    requirePageScope(access, "project:write");
    const values = formValues(await c.req.parseBody());
    const saved = await saveRule(c, project, rule, values);
    if ("errors" in saved) return editRulePage(c, values, saved.errors);
    return c.redirect(`${ruleUrl(org.slug, project.slug, rule.id)}details/?saved=1`, 303);
  });
  web.get(`${one}/delete`, async (c) => {
    const { org, access, project, rule } = await rulePage(c);
    requirePageScope(access, "project:write");
    const viewer = c.get("viewer");
    if (!viewer) throw new PageError(403, "Sign in first.");
    return render(
      c,
      <Layout title={`Delete ${rule.name}`} viewer={viewer} org={org} section="alerts">
        <h1>{`Delete alert rule ${rule.name}?`}</h1>
        <p>The rule stops firing at once; its deliveries already sent stay sent.</p>
        <form
          method="post"
          action={`${ruleUrl(org.slug, project.slug, rule.id)}delete/`}
          class="actions"
        >
          <CsrfField token={viewer.csrfToken} />
          <button type="submit" class="danger">
            {`Delete ${rule.name}`}
          </button>
          <a class="button" href={`${ruleUrl(org.slug, project.slug, rule.id)}details/`}>
            Cancel
          </a>
        </form>
      </Layout>,
    );
  });
  web.post(`${one}/delete`, requireCsrf(), async (c) => {
    const { org, access, project, rule } = await rulePage(c);
    requirePageScope(access, "project:write");
    if (!(await deleteAlertRule(c.get("services").db.pool, project.id, rule.id))) {
      throw new PageError(404, "This project has no such alert rule.");
    }
    return c.redirect(rulesUrl(org.slug), 303);
  });
}
