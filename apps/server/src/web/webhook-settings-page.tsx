import { MAX_WEBHOOK_URLS, webhookUrlsSchema } from "@sluice/alert-rules";
import { findProjectPlugin, saveWebhookPlugin } from "@sluice/db";
import type { Context, Hono } from "hono";
import { requireCsrf } from "../accounts/session-middleware.ts";
import { checkWebhookUrls } from "../alert-targets.ts";
import { CsrfField } from "./components.tsx";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import type { WebEnv } from "./web-env.ts";
import { projectSettingsPage, requirePageScope } from "./web-lookups.ts";

/** The page's project (one the viewer can see) with the viewer's access, or a 404. */
async function projectPage(c: Context<WebEnv>) {
  const page = await projectSettingsPage(c);
  requirePageScope(page.access, "project:read");
  return page;
}

async function webhooksPage(c: Context<WebEnv>, posted?: { urls: string; errors: string[] }) {
  const { org, access, project } = await projectPage(c);
  const viewer = c.get("viewer");
  const plugin = await findProjectPlugin(c.get("services").db.pool, project.id, "webhooks");
  const stored = typeof plugin?.config.urls === "string" ? plugin.config.urls : "";
  const canWrite = access.scopes.has("project:write") && viewer;
  const errors = posted?.errors ?? [];
  return render(
    c,
    <Layout title={`WebHooks — ${project.slug}`} viewer={viewer} org={org} section="projects">
      <p class="actions">
        <a href={`/settings/${org.slug}/projects/${project.slug}/`}>{`Project ${project.slug}`}</a>
        <a href={`/organizations/${org.slug}/alerts/rules/`}>Alert rules</a>
      </p>
      <h1>{`WebHooks of ${project.slug}`}</h1>
      {c.req.query("saved") === "1" ? (
        <p class="notice" role="status">
          The webhook URLs are saved.
        </p>
      ) : null}
      <p>
        {`A rule's action "Send a notification via the project's webhooks" POSTs the event to each of these URLs, signed with the project's secret (header Sentry-Hook-Signature). The plugin is ${plugin?.enabled ? "enabled" : "disabled"}.`}
      </p>
      {canWrite ? (
        <form
          method="post"
          action={`/settings/${org.slug}/projects/${project.slug}/plugins/webhooks/`}
          class="panel"
        >
          <CsrfField token={viewer.csrfToken} />
          <p>
            <label for="urls">Callback URLs</label>
          </p>
          <textarea
            id="urls"
            name="urls"
            rows={5}
            cols={70}
            aria-describedby={errors.length > 0 ? "urls-help urls-errors" : "urls-help"}
            aria-invalid={errors.length > 0 ? "true" : undefined}
          >
            {posted?.urls ?? stored}
          </textarea>
          <p id="urls-help" class="muted">
            {`One http(s) URL per line, at most ${MAX_WEBHOOK_URLS}. Saving enables the plugin.`}
          </p>
          {errors.length > 0 ? (
            <ul class="field-errors" id="urls-errors" role="alert">
              {errors.map((m) => (
                <li>{m}</li>
              ))}
            </ul>
          ) : null}
          <button type="submit" class="primary">
            Save webhook URLs
          </button>
        </form>
      ) : (
        <section class="panel" aria-labelledby="urls-heading">
          <h2 id="urls-heading">Callback URLs</h2>
          <pre>{stored || "(none)"}</pre>
        </section>
      )}
    </Layout>,
    errors.length > 0 ? 400 : 200,
  );
}

/**
 * The webhooks plugin's settings page, at Sentry's
 * `/settings/{org}/projects/{project}/plugins/webhooks/`: its URLs, saved
 * through the schema of `PUT /api/0/projects/{org}/{project}/plugins/webhooks/`
 * (`webhookUrlsSchema`) by the same `saveWebhookPlugin`. Reading needs
 * `project:read`, saving `project:write`. The signing secret is not shown
 * here (the API shows it to callers who may write the project).
 */
export function registerWebhookSettingsPage(web: Hono<WebEnv>): void {
  const path = "/settings/:org/projects/:project/plugins/webhooks";
  web.get(path, (c) => webhooksPage(c));
  web.post(path, requireCsrf(), async (c) => {
    const { org, access, project } = await projectPage(c);
    requirePageScope(access, "project:write");
    const body = await c.req.parseBody();
    const raw = typeof body.urls === "string" ? body.urls : "";
    const parsed = webhookUrlsSchema.safeParse(raw);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((i) =>
        i.path.length > 0 ? `Line ${Number(i.path[0]) + 1}: ${i.message}` : i.message,
      );
      return webhooksPage(c, { urls: raw.slice(0, 50_000), errors });
    }
    const { config } = c.get("services");
    const refused = await checkWebhookUrls(parsed.data, config.alerts.allowPrivateDestinations);
    if (refused.length > 0) return webhooksPage(c, { urls: raw.slice(0, 50_000), errors: refused });
    await saveWebhookPlugin(c.get("services").db.pool, project.id, {
      enabled: true,
      urls: parsed.data,
    });
    return c.redirect(
      `/settings/${org.slug}/projects/${project.slug}/plugins/webhooks/?saved=1`,
      303,
    );
  });
}
