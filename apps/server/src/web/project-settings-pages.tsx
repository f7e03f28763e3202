import {
  findProjectGroupingRules,
  findSpikeProtection,
  listProjectKeys,
  listQuotas,
  type Project,
  type ProjectKey,
  type QuotaRow,
  setSpikeProtectionEnabled,
  updateProjectGroupingRules,
  updateProjectKey,
} from "@sluice/db";
import { checkGroupingRuleText, type GroupingRuleError } from "@sluice/grouping";
import type { Context, Hono } from "hono";
import type { Child } from "hono/jsx";
import type { Viewer } from "../accounts/access.ts";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { keyRateLimitInput, keyRateLimitOf } from "../key-rate-limit.ts";
import type { Services } from "../services.ts";
import { CsrfField, formatCount, Notice, RelativeTime } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { DsnField, projectDsns } from "./project-setup.tsx";
import { QuotaTable } from "./quota-pages.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { projectSettingsPage, requirePageScope } from "./web-lookups.ts";

/**
 * A project's grouping rules and client keys pages, at Sentry's settings
 * URLs (static/app/data/forms/projectIssueGrouping.tsx `route`:
 * `/settings/:orgId/projects/:projectId/issue-grouping/`; Client Keys:
 * `/settings/:orgId/projects/:projectId/keys/`), and the rate limits the
 * project settings page shows. Changes need `project:write`, as the API's
 * `PUT`s; others see the settings read-only.
 */

type RuleField = GroupingRuleError["field"];
type ProjectContext = Awaited<ReturnType<typeof projectSettingsPage>>;

const DOCS = "https://docs.sentry.io/concepts/data-management/event-grouping";

const RULE_FIELDS: {
  field: RuleField;
  label: string;
  help: string;
  docs: string;
  example: string;
}[] = [
  {
    field: "fingerprintingRules",
    label: "Fingerprint rules",
    help: "One rule a line: matchers, then -> and the fingerprint; the first rule that matches sets the event's fingerprint.",
    docs: `${DOCS}/fingerprint-rules/`,
    example:
      'error.type:DatabaseUnavailable -> system-down\nmessage:"*timeout*" -> timeouts, {{ transaction }}',
  },
  {
    field: "groupingEnhancements",
    label: "Stack trace rules",
    help: "One rule a line: matchers, then actions such as -app, +app or -group.",
    docs: `${DOCS}/stack-trace-rules/`,
    example:
      "stack.module:some.library.* -app\nfamily:javascript stack.abs_path:**/node_modules/** -group",
  },
];

const settingsBase = (ctx: ProjectContext) =>
  `/settings/${ctx.org.slug}/projects/${ctx.project.slug}`;

/** A browser posts a textarea's lines with CRLF (HTML's form encoding); rules are kept with LF, as API clients send them. */
function formText(value: unknown): string | undefined {
  return typeof value === "string" ? value.replace(/\r\n?/g, "\n") : undefined;
}

/** Registers the grouping rules and client keys pages. */
export function registerProjectSettingsPages(web: Hono<WebEnv>): void {
  web.get("/settings/:org/projects/:project/issue-grouping", async (c) =>
    groupingPage(c, await projectSettingsPage(c)),
  );
  web.post("/settings/:org/projects/:project/issue-grouping", requireCsrf(), async (c) => {
    const ctx = await projectSettingsPage(c);
    requirePageScope(ctx.access, "project:write");
    const body = await c.req.parseBody();
    const values: Partial<Record<RuleField, string>> = {};
    const errors: Partial<Record<RuleField, string>> = {};
    for (const { field } of RULE_FIELDS) {
      const value = formText(body[field]);
      if (value === undefined) continue;
      values[field] = value;
      const problem = checkGroupingRuleText(field, value);
      if (problem) errors[field] = problem.message;
    }
    if (Object.keys(errors).length > 0) return groupingPage(c, ctx, { values, errors });
    if (Object.keys(values).length > 0) {
      await updateProjectGroupingRules(c.get("services").db.orm, ctx.project.id, values);
    }
    return c.redirect(`${settingsBase(ctx)}/issue-grouping/?saved=1`, 303);
  });

  // As `PUT …/spike-protection/` `{"isEnabled": …}`, which needs project:write too.
  web.post("/settings/:org/projects/:project/spike-protection", requireCsrf(), async (c) => {
    const ctx = await projectSettingsPage(c);
    requirePageScope(ctx.access, "project:write");
    const body = await c.req.parseBody();
    await setSpikeProtectionEnabled(
      c.get("services").db.orm,
      ctx.project.id,
      body.enabled === "true",
    );
    return c.redirect(`${settingsBase(ctx)}/`, 303);
  });

  web.get("/settings/:org/projects/:project/keys", async (c) =>
    keysPage(c, await projectSettingsPage(c)),
  );
  web.post(
    "/settings/:org/projects/:project/keys/:keyId{[0-9]+}/rate-limit",
    requireCsrf(),
    async (c) => {
      const ctx = await projectSettingsPage(c);
      requirePageScope(ctx.access, "project:write");
      const { orm } = c.get("services").db;
      const key = (await listProjectKeys(orm, ctx.project.id)).find(
        (k) => String(k.id) === c.req.param("keyId"),
      );
      if (!key) throw new PageError(404, "This project has no such key.");
      const body = await c.req.parseBody();
      const parsed = readRateLimitForm(body.count, body.window);
      if (typeof parsed === "string") return keysPage(c, ctx, { keyId: key.id, message: parsed });
      await updateProjectKey(orm, key.id, { rateLimit: parsed });
      return c.redirect(`${settingsBase(ctx)}/keys/?saved=${key.id}`, 303);
    },
  );
}

/**
 * The rate limit form's two fields as the API's `rateLimit`: both empty
 * clears it; otherwise both are whole numbers checked by the API's rules
 * (`keyRateLimitInput`). Returns the limit to store, or what is wrong.
 */
function readRateLimitForm(
  count: unknown,
  window: unknown,
): { count: number; window: number } | null | string {
  const text = (v: unknown) => (typeof v === "string" ? v.trim() : "");
  const [c, w] = [text(count), text(window)];
  if (c === "" && w === "") return null;
  if (c === "" || w === "")
    return "Give both a count and a window, or leave both empty for no limit.";
  const number = (v: string) => (/^\d{1,16}$/.test(v) ? Number(v) : Number.NaN);
  const result = keyRateLimitInput.safeParse({ count: number(c), window: number(w) });
  if (!result.success) {
    const field = result.error.issues[0]?.path[0];
    return field === "window"
      ? "The window is a whole number of seconds from 0 to 86,400 (a day)."
      : "The count is a whole number of events, 0 or more.";
  }
  return keyRateLimitOf(result.data);
}

/** The project settings page's links to its grouping and keys pages. */
export function ProjectSettingsLinks({ base }: { base: string }) {
  return (
    <nav aria-label="Project settings">
      <p>
        <a href={`${base}/issue-grouping/`}>Issue grouping</a>
        {" · "}
        <a href={`${base}/keys/`}>Client keys and their rate limits</a>
        {" · "}
        <a href={`${base}/quotas/`}>Quotas</a>
      </p>
    </nav>
  );
}

/** A project settings sub-page: the layout, links between the project's settings pages, the h1. */
function SettingsFrame(props: {
  ctx: ProjectContext;
  viewer: Viewer | null;
  heading: string;
  children?: Child;
}) {
  const { ctx, heading } = props;
  const base = settingsBase(ctx);
  return (
    <Layout
      title={`${heading} — ${ctx.project.slug}`}
      viewer={props.viewer}
      org={ctx.org}
      section="projects"
    >
      <nav aria-label="Project settings">
        <p>
          <a href={`${base}/`}>{`Project ${ctx.project.slug}`}</a>
          {" · "}
          <a href={`${base}/issue-grouping/`}>Issue grouping</a>
          {" · "}
          <a href={`${base}/keys/`}>Client keys</a>
        </p>
      </nav>
      <h1>{heading}</h1>
      {props.children}
    </Layout>
  );
}

async function groupingPage(
  c: Context<WebEnv>,
  ctx: ProjectContext,
  form?: {
    values: Partial<Record<RuleField, string>>;
    errors: Partial<Record<RuleField, string>>;
  },
) {
  const viewer = c.get("viewer");
  const stored = await findProjectGroupingRules(c.get("services").db.orm, ctx.project.id);
  const canEdit = ctx.access.scopes.has("project:write") && viewer !== null;
  const saved = !form && c.req.query("saved") === "1";
  return render(
    c,
    <SettingsFrame ctx={ctx} viewer={viewer} heading="Issue grouping">
      <Notice message={saved ? "Grouping rules saved." : undefined} />
      {form ? (
        <Notice message="The rules were not saved: fix the errors below." error={true} />
      ) : null}
      <p>
        Rules change how new events group into issues (events already grouped stay where they are);
        workers apply saved rules within 5 seconds.
      </p>
      {canEdit ? null : (
        <p class="notice" role="status">
          Your role can read these rules; changing them needs project:write (admin, manager or
          owner).
        </p>
      )}
      <form method="post" action={`${settingsBase(ctx)}/issue-grouping/`}>
        {canEdit && viewer ? <CsrfField token={viewer.csrfToken} /> : null}
        {RULE_FIELDS.map(({ field, label, help, docs, example }) => {
          const error = form?.errors[field];
          const id = `rules-${field}`;
          return (
            <section class="panel" aria-labelledby={`${id}-heading`}>
              <h2 id={`${id}-heading`}>
                <label for={id}>{label}</label>
              </h2>
              <p id={`${id}-help`} class="muted">
                {`${help} `}
                <a href={docs}>{`Sentry's ${label.toLowerCase()} syntax`}</a>
              </p>
              {error ? (
                <p id={`${id}-error`} class="notice error" role="alert">
                  {error}
                </p>
              ) : null}
              <textarea
                id={id}
                name={field}
                class="rules"
                rows={8}
                spellcheck={false}
                placeholder={canEdit ? example : undefined}
                readonly={!canEdit}
                aria-invalid={error ? "true" : undefined}
                aria-describedby={error ? `${id}-error ${id}-help` : `${id}-help`}
              >
                {form?.values[field] ?? stored[field]}
              </textarea>
            </section>
          );
        })}
        {canEdit ? (
          <button type="submit" class="primary">
            Save grouping rules
          </button>
        ) : null}
      </form>
    </SettingsFrame>,
    form ? 400 : 200,
  );
}

/** A whole-number field of the rate limit form, marked invalid with its error's id. */
function NumberField(props: {
  id: string;
  name: string;
  label: string;
  max: number;
  value: number | null;
  errorId: string | undefined;
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        type="number"
        id={props.id}
        name={props.name}
        min={0}
        max={props.max}
        step={1}
        value={props.value === null ? "" : String(props.value)}
        aria-invalid={props.errorId ? "true" : undefined}
        aria-describedby={props.errorId}
      />
    </div>
  );
}

function rateLimitText(key: ProjectKey): string {
  return key.rateLimitCount !== null && key.rateLimitWindow !== null
    ? `${formatCount(key.rateLimitCount)} events per ${formatCount(key.rateLimitWindow)} seconds`
    : "No rate limit";
}

async function keysPage(
  c: Context<WebEnv>,
  ctx: ProjectContext,
  problem?: { keyId: number; message: string },
) {
  const viewer = c.get("viewer");
  const dsns = await projectDsns(c.get("services"), ctx.project);
  const canEdit = ctx.access.scopes.has("project:write") && viewer !== null;
  const saved = problem
    ? undefined
    : dsns.find(({ key }) => String(key.id) === c.req.query("saved"));
  return render(
    c,
    <SettingsFrame ctx={ctx} viewer={viewer} heading="Client keys (DSN)">
      <Notice message={saved ? `Rate limit of key ${saved.key.label} saved.` : undefined} />
      <p>
        A key's rate limit counts the error events it sends per window (Sentry's key quota); ingest
        answers the rest with 429 and reads a change within 10 seconds.
      </p>
      {dsns.length === 0 ? <p class="muted">No keys: create one on the project's page.</p> : null}
      {dsns.map(({ key, dsn }) => {
        const error = problem?.keyId === key.id ? problem.message : undefined;
        const id = `key-${key.id}`;
        return (
          <section class="panel" aria-labelledby={`${id}-heading`}>
            <h2 id={`${id}-heading`}>{`${key.label}${key.isActive ? "" : " (disabled)"}`}</h2>
            <DsnField id={`dsn-${key.id}`} dsn={dsn} label={`DSN of ${key.label}`} />
            <dl class="facts spaced">
              <dt>Public key</dt>
              <dd class="mono">{key.publicKey}</dd>
              <dt>Rate limit</dt>
              <dd>{rateLimitText(key)}</dd>
              <dt>Created</dt>
              <dd>
                <RelativeTime date={key.createdAt} />
              </dd>
            </dl>
            {canEdit && viewer ? (
              <form
                method="post"
                action={`${settingsBase(ctx)}/keys/${key.id}/rate-limit/`}
                class="toolbar"
                aria-label={`Rate limit of ${key.label}`}
              >
                <CsrfField token={viewer.csrfToken} />
                <NumberField
                  id={`${id}-count`}
                  name="count"
                  label="Events"
                  max={Number.MAX_SAFE_INTEGER}
                  value={key.rateLimitCount}
                  errorId={error ? `${id}-error` : undefined}
                />
                <NumberField
                  id={`${id}-window`}
                  name="window"
                  label="Window (seconds)"
                  max={86_400}
                  value={key.rateLimitWindow}
                  errorId={error ? `${id}-error` : undefined}
                />
                <button type="submit">{`Save rate limit of ${key.label}`}</button>
              </form>
            ) : null}
            {error ? (
              <p id={`${id}-error`} class="notice error" role="alert">
                {error}
              </p>
            ) : null}
          </section>
        );
      })}
    </SettingsFrame>,
    problem ? 400 : 200,
  );
}

/** What the project settings page shows of its limits: spike protection, quotas, key limits. */
export type ProjectLimits = {
  spike: {
    isEnabled: boolean;
    isActive: boolean;
    bound: number | null;
    startedAt: Date | null;
    endedAt: Date | null;
    trips: number;
  };
  rule: Services["config"]["quotas"]["spike"];
  projectQuotas: QuotaRow[];
  organizationQuotas: QuotaRow[];
};

/**
 * Reads a project's limits as `GET …/spike-protection/` and `…/quotas/`
 * do: the spike protection row ingest records (absent: enabled, never
 * tripped), the instance's spike rule, and the stored quotas.
 */
export async function readProjectLimits(
  services: Services,
  project: Project,
): Promise<ProjectLimits> {
  const { orm } = services.db;
  const [row, projectQuotas, organizationQuotas] = await Promise.all([
    findSpikeProtection(orm, project.id),
    listQuotas(orm, project.organizationId, project.id),
    listQuotas(orm, project.organizationId, null),
  ]);
  return {
    spike: {
      isEnabled: row?.enabled ?? true,
      isActive: row?.active ?? false,
      bound: row?.bound ?? null,
      startedAt: row?.startedAt ?? null,
      endedAt: row?.endedAt ?? null,
      trips: row?.trips ?? 0,
    },
    rule: services.config.quotas.spike,
    projectQuotas,
    organizationQuotas,
  };
}

/** The "Rate limits" section of the project settings page; quotas change on their own pages (quota-pages.tsx). */
export function ProjectLimitsSection({
  limits,
  base,
  csrf,
}: {
  limits: ProjectLimits;
  /** The project's settings path (`/settings/{org}/projects/{project}`). */
  base: string;
  /** The viewer's CSRF token when they may change the project (project:write), else null. */
  csrf: string | null;
}) {
  const { spike, rule } = limits;
  return (
    <>
      <section class="panel" aria-labelledby="spike-heading">
        <h2 id="spike-heading">Spike protection</h2>
        <dl class="facts">
          <dt>Spike protection</dt>
          <dd>{spike.isEnabled ? "On" : "Off"}</dd>
          <dt>Now</dt>
          <dd>
            {spike.isActive ? (
              <>
                <strong>{`Active: limited to ${formatCount(spike.bound ?? 0)} error events a minute`}</strong>
                {" since "}
                <RelativeTime date={spike.startedAt} />
              </>
            ) : (
              <>
                {"Not active"}
                {spike.endedAt ? (
                  <>
                    {"; the last spike ended "}
                    <RelativeTime date={spike.endedAt} />
                  </>
                ) : null}
              </>
            )}
          </dd>
          <dt>Spikes so far</dt>
          <dd>{formatCount(spike.trips)}</dd>
          <dt>Bound</dt>
          <dd>
            {`The larger of ${formatCount(rule.floorPerMinute)} and ${rule.multiple} × the average of the last ${rule.trailingMinutes} minutes, in error events a minute`}
          </dd>
        </dl>
        {csrf ? (
          <form method="post" action={`${base}/spike-protection/`} class="actions">
            <CsrfField token={csrf} />
            <input type="hidden" name="enabled" value={spike.isEnabled ? "false" : "true"} />
            <button type="submit">
              {spike.isEnabled ? "Turn spike protection off" : "Turn spike protection on"}
            </button>
          </form>
        ) : null}
      </section>
      <section class="panel" aria-labelledby="quotas-heading">
        <h2 id="quotas-heading">Quotas</h2>
        {limits.projectQuotas.length === 0 ? (
          <p class="muted">This project has no quotas of its own.</p>
        ) : (
          <QuotaTable label="Project quotas" rows={limits.projectQuotas} />
        )}
        {limits.organizationQuotas.length === 0 ? null : (
          <>
            <h3>The organization's quotas (they count every project)</h3>
            <QuotaTable label="Organization quotas" rows={limits.organizationQuotas} />
          </>
        )}
        <p>
          <a href={`${base}/quotas/`}>Change the project's quotas</a>
          {" · "}
          <a href={`${base.replace(/\/projects\/[^/]+$/, "")}/quotas/`}>
            The organization's quotas
          </a>
        </p>
      </section>
    </>
  );
}
