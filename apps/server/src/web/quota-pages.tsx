import { deleteQuota, listQuotas, type Organization, type QuotaRow } from "@sluice/db";
import type { Context, Hono } from "hono";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { addQuota, MAX_WINDOW_SECONDS, QUOTA_CATEGORIES, quotaInput } from "../quota-settings.ts";
import { CsrfField, formatCount, Notice } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import { PageError, type WebEnv } from "./web-env.ts";
import { idParam, orgPage, projectSettingsPage, requirePageScope } from "./web-lookups.ts";

/**
 * Quota settings pages: an organization's quotas (`/settings/{org}/quotas/`,
 * changed with `org:write`) and a project's (`/settings/{org}/projects/{project}/quotas/`,
 * changed with `project:write`), the same scopes as `POST …/quotas/`. Sentry
 * has no such pages (its quotas come from billing); the form takes exactly
 * what the API takes, checked by the same `quotaInput`.
 */

type QuotaScope = {
  org: Organization;
  projectId: number | null;
  /** Where the page lives, without the trailing slash. */
  base: string;
  heading: string;
  scopeName: string;
  canEdit: boolean;
  csrf: string | null;
};

type QuotaForm = {
  values: { categories: string[]; limit: string; window: string; reasonCode: string };
  errors: Partial<Record<"categories" | "limit" | "window" | "reasonCode" | "form", string>>;
};

/** Longest text kept from a form field when it is shown again with its error. */
const MAX_ECHO_CHARS = 100;

/** Reads the add-a-quota form into the API's body and checks it; the errors are by field. */
function readQuotaForm(body: Record<string, string | File | (string | File)[]>): {
  form: QuotaForm;
  input: ReturnType<typeof quotaInput.safeParse>;
} {
  const text = (v: unknown) => (typeof v === "string" ? v.trim().slice(0, MAX_ECHO_CHARS) : "");
  const categories = ([] as unknown[])
    .concat(body.categories ?? [])
    .filter((v): v is string => typeof v === "string")
    .slice(0, QUOTA_CATEGORIES.length + 1);
  const values = {
    categories,
    limit: text(body.limit),
    window: text(body.window),
    reasonCode: text(body.reasonCode),
  };
  const whole = (v: string) => (/^\d{1,16}$/.test(v) ? Number(v) : Number.NaN);
  const input = quotaInput.safeParse({
    categories,
    limit: whole(values.limit),
    window: whole(values.window),
    reasonCode: values.reasonCode === "" ? undefined : values.reasonCode,
  });
  const errors: QuotaForm["errors"] = {};
  if (!input.success) {
    for (const issue of input.error.issues) {
      const field = String(issue.path[0] ?? "form") as keyof QuotaForm["errors"];
      errors[field] ??=
        field === "limit"
          ? "Enter a whole number of events (or bytes, for attachments), 0 or more."
          : field === "window"
            ? `Enter a whole number of seconds from 1 to ${formatCount(MAX_WINDOW_SECONDS)}.`
            : field === "categories"
              ? "Choose only the categories listed."
              : issue.message;
    }
  }
  return { form: { values, errors }, input };
}

/**
 * Quotas as a table: categories, limit, window, reason code, and with
 * `remove` a "Remove quota {id}" button per row posting to `{base}/{id}/delete/`.
 * The project settings page shows it without `remove`.
 */
export function QuotaTable({
  label,
  rows,
  remove,
}: {
  label: string;
  rows: QuotaRow[];
  remove?: { base: string; csrf: string };
}) {
  return (
    <table aria-label={label}>
      <thead>
        <tr>
          <th scope="col">Categories</th>
          <th scope="col" class="num">
            Limit
          </th>
          <th scope="col" class="num">
            Window (seconds)
          </th>
          <th scope="col">Reason code</th>
          {remove ? <th scope="col">Remove</th> : null}
        </tr>
      </thead>
      <tbody>
        {rows.map((q) => (
          <tr>
            <td>{q.categories.length === 0 ? "all" : q.categories.join(", ")}</td>
            <td class="num">{formatCount(q.quotaLimit)}</td>
            <td class="num">{formatCount(q.windowSeconds)}</td>
            <td class="mono">{q.reasonCode}</td>
            {remove ? (
              <td>
                <form method="post" action={`${remove.base}/${q.id}/delete/`} class="inline">
                  <CsrfField token={remove.csrf} />
                  <button type="submit">{`Remove quota ${q.id}`}</button>
                </form>
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AddQuotaForm({ scope, form }: { scope: QuotaScope; form?: QuotaForm }) {
  const errors = form?.errors ?? {};
  const chosen = new Set(form?.values.categories ?? []);
  const described = (field: keyof QuotaForm["errors"], help?: string) =>
    [errors[field] ? `quota-${field}-error` : "", help ?? ""].join(" ").trim() || undefined;
  const FieldError = ({ field }: { field: keyof QuotaForm["errors"] }) =>
    errors[field] ? (
      <p id={`quota-${field}-error`} class="notice error" role="alert">
        {errors[field]}
      </p>
    ) : null;
  return (
    <form method="post" action={`${scope.base}/`} class="panel" aria-labelledby="add-quota">
      <h2 id="add-quota">Add a quota</h2>
      {scope.csrf ? <CsrfField token={scope.csrf} /> : null}
      <FieldError field="form" />
      <fieldset aria-describedby={described("categories", "quota-categories-help")}>
        <legend>Categories</legend>
        <p id="quota-categories-help" class="muted">
          Relay's data categories; none chosen counts every category.
        </p>
        <FieldError field="categories" />
        {QUOTA_CATEGORIES.map((category) => (
          <label class="check">
            <input
              type="checkbox"
              name="categories"
              value={category}
              checked={chosen.has(category)}
            />
            {` ${category}`}
          </label>
        ))}
      </fieldset>
      <div class="field">
        <label for="quota-limit">Limit</label>
        <FieldError field="limit" />
        <input
          id="quota-limit"
          name="limit"
          inputmode="numeric"
          required
          value={form?.values.limit}
          aria-invalid={errors.limit ? "true" : undefined}
          aria-describedby={described("limit", "quota-limit-help")}
        />
        <p id="quota-limit-help" class="muted">
          Items a window may accept (bytes for attachments); 0 refuses everything.
        </p>
      </div>
      <div class="field">
        <label for="quota-window">Window (seconds)</label>
        <FieldError field="window" />
        <input
          id="quota-window"
          name="window"
          inputmode="numeric"
          required
          value={form?.values.window}
          aria-invalid={errors.window ? "true" : undefined}
          aria-describedby={described("window")}
        />
      </div>
      <div class="field">
        <label for="quota-reason">Reason code</label>
        <FieldError field="reasonCode" />
        <input
          id="quota-reason"
          name="reasonCode"
          value={form?.values.reasonCode}
          aria-invalid={errors.reasonCode ? "true" : undefined}
          aria-describedby={described("reasonCode", "quota-reason-help")}
        />
        <p id="quota-reason-help" class="muted">
          {`Optional: what X-Sentry-Rate-Limits names (a-z, 0-9, _); default ${scope.projectId === null ? "org_quota" : "project_quota"}.`}
        </p>
      </div>
      <button type="submit" class="primary">
        Add quota
      </button>
    </form>
  );
}

async function quotaPage(c: Context<WebEnv>, scope: QuotaScope, form?: QuotaForm) {
  const rows = await listQuotas(c.get("services").db.orm, scope.org.id, scope.projectId);
  const saved = c.req.query("saved");
  return render(
    c,
    <Layout
      title={scope.heading}
      viewer={c.get("viewer")}
      org={scope.org}
      section={scope.projectId === null ? "stats" : "projects"}
    >
      <h1>{scope.heading}</h1>
      <Notice
        message={
          form
            ? undefined
            : saved === "added"
              ? "Quota added."
              : saved === "removed"
                ? "Quota removed."
                : undefined
        }
      />
      {form ? (
        <Notice message="The quota was not added: fix the errors below." error={true} />
      ) : null}
      <p>
        {`A quota caps what ${scope.scopeName} accepts per window; ingest reads changes within 10 seconds and answers 429 with Retry-After and X-Sentry-Rate-Limits once a quota is used up (README "Rate limits and quotas").`}
      </p>
      {rows.length === 0 ? (
        <p class="muted">{`No quotas for ${scope.scopeName} yet.`}</p>
      ) : (
        <QuotaTable
          label="Quotas"
          rows={rows}
          remove={scope.canEdit && scope.csrf ? { base: scope.base, csrf: scope.csrf } : undefined}
        />
      )}
      {scope.canEdit ? (
        <AddQuotaForm scope={scope} form={form} />
      ) : (
        <p class="notice" role="status">
          {`Your role can read these quotas; changing them needs ${scope.projectId === null ? "org:write (manager or owner)" : "project:write (admin, manager or owner)"}.`}
        </p>
      )}
    </Layout>,
    form ? 400 : 200,
  );
}

async function organizationScope(c: Context<WebEnv>): Promise<QuotaScope> {
  const { org, access } = await orgPage(c);
  requirePageScope(access, "org:read");
  const viewer = c.get("viewer");
  const canEdit = access.scopes.has("org:write") && viewer !== null;
  return {
    org,
    projectId: null,
    base: `/settings/${org.slug}/quotas`,
    heading: `Quotas of ${org.slug}`,
    scopeName: "the organization (all its projects together)",
    canEdit,
    csrf: canEdit && viewer ? viewer.csrfToken : null,
  };
}

async function projectScope(c: Context<WebEnv>): Promise<QuotaScope> {
  const { org, access, project } = await projectSettingsPage(c);
  const viewer = c.get("viewer");
  const canEdit = access.scopes.has("project:write") && viewer !== null;
  return {
    org,
    projectId: project.id,
    base: `/settings/${org.slug}/projects/${project.slug}/quotas`,
    heading: `Quotas of project ${project.slug}`,
    scopeName: `project ${project.slug}`,
    canEdit,
    csrf: canEdit && viewer ? viewer.csrfToken : null,
  };
}

/** Registers the organization and project quota pages (see the module comment). */
export function registerQuotaPages(web: Hono<WebEnv>): void {
  const scopes: [string, (c: Context<WebEnv>) => Promise<QuotaScope>][] = [
    ["/settings/:org/quotas", organizationScope],
    ["/settings/:org/projects/:project/quotas", projectScope],
  ];
  for (const [path, scopeOf] of scopes) {
    web.get(path, async (c) => quotaPage(c, await scopeOf(c)));
    web.post(path, requireCsrf(), async (c) => {
      const scope = await scopeOf(c);
      if (!scope.canEdit) throw new PageError(403, "Your role cannot change these quotas.");
      const { form, input } = readQuotaForm(await c.req.parseBody({ all: true }));
      if (!input.success) return quotaPage(c, scope, form);
      const added = await addQuota(
        c.get("services").db.orm,
        scope.org.id,
        scope.projectId,
        input.data,
      );
      if (!added.ok) return quotaPage(c, scope, { ...form, errors: { form: added.detail } });
      return c.redirect(`${scope.base}/?saved=added`, 303);
    });
    web.post(`${path}/:quotaId{[0-9]+}/delete`, requireCsrf(), async (c) => {
      const scope = await scopeOf(c);
      if (!scope.canEdit) throw new PageError(403, "Your role cannot change these quotas.");
      const id = idParam(c, "quotaId");
      const { orm } = c.get("services").db;
      if (id === null || !(await deleteQuota(orm, scope.org.id, scope.projectId, id))) {
        throw new PageError(404, "There is no such quota here.");
      }
      return c.redirect(`${scope.base}/?saved=removed`, 303);
    });
  }
}
