import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { loadAccess } from "../accounts/access.ts";
import { sessionAuth } from "../accounts/session-middleware.ts";
import type { Services } from "../services.ts";
import { registerAlertRulePages } from "./alert-rule-pages.tsx";
import { ASSETS } from "./assets.ts";
import { errorPage } from "./error-pages.tsx";
import { registerIssueListPages } from "./issue-list.tsx";
import { registerIssueMergePages } from "./issue-merge-pages.tsx";
import { registerIssuePages } from "./issue-page.tsx";
import { registerManagePages } from "./manage-pages.tsx";
import { registerProjectSettingsPages } from "./project-settings-pages.tsx";
import { registerQuotaPages } from "./quota-pages.tsx";
import { registerReleasePages } from "./release-pages.tsx";
import { registerSettingsPages } from "./settings-pages.tsx";
import { registerUsagePage } from "./usage-page.tsx";
import { PageError, PageRedirect, type WebEnv } from "./web-env.ts";
import { registerWebhookSettingsPage } from "./webhook-settings-page.tsx";

/**
 * What every page answer carries: a policy that allows only Sluice's own
 * stylesheet and script (no inline script or style, no framing), and no
 * referrer leaving the site (issue URLs name customers' errors).
 */
const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy":
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
  "X-Frame-Options": "DENY",
};

/** Largest form a page accepts (a bulk action of 100 ids is about 2 KiB). */
const MAX_FORM_BYTES = 64 * 1024;

/** Where the pages live, under Sentry's URLs. */
const PAGE_PREFIXES = ["/organizations/*", "/settings/*", "/manage/*"];

/**
 * The web UI (issue #20): server-rendered pages at Sentry's URLs, behind
 * the session: a page asked for without one redirects to
 * `/auth/login/?next=<path>`. Errors are pages in the layout, never JSON.
 * Mounted by the api role beside the REST API.
 */
export function createWebRoutes(services: Services): Hono<WebEnv> {
  const web = new Hono<WebEnv>({ strict: false });
  web.onError((error, c) => {
    if (error instanceof PageError) return errorPage(c, error.status, error.message);
    if (error instanceof PageRedirect) return c.redirect(error.location, 302);
    services.log.error({ err: error, path: c.req.path }, "page failed");
    return errorPage(c, 500, "The page failed to render; the error is in Sluice's log.");
  });

  web.get("/_static/:name", (c) => {
    const asset = ASSETS[c.req.param("name")];
    if (!asset) return c.text("not found", 404);
    c.header("ETag", asset.etag);
    c.header("Cache-Control", "public, max-age=31536000, immutable");
    c.header("X-Content-Type-Options", "nosniff");
    if (c.req.header("if-none-match") === asset.etag) return c.body(null, 304);
    return c.body(asset.body, 200, { "Content-Type": asset.type });
  });

  for (const prefix of [...PAGE_PREFIXES, "/"]) {
    web.use(prefix, async (c, next) => {
      c.set("services", services);
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
      await next();
    });
    web.use(
      prefix,
      bodyLimit({
        maxSize: MAX_FORM_BYTES,
        onError: (c) => errorPage(c, 413, "That form is larger than any page sends."),
      }),
    );
    web.use(prefix, sessionAuth(services));
    web.use(prefix, async (c, next) => {
      if (!c.get("viewer")) {
        const url = new URL(c.req.url);
        return c.redirect(
          `/auth/login/?next=${encodeURIComponent(url.pathname + url.search)}`,
          302,
        );
      }
      await next();
    });
  }

  // The printed URL of `npm start` lands here: the first organization's issues.
  web.get("/", async (c) => {
    const viewer = c.get("viewer");
    const orgs = viewer ? await loadAccess(services, viewer).organizations() : [];
    const first = orgs[0];
    if (!first) throw new PageError(404, "You are not a member of any organization yet.");
    return c.redirect(`/organizations/${first.slug}/issues/`, 302);
  });

  registerIssueListPages(web);
  registerIssuePages(web);
  registerIssueMergePages(web);
  registerReleasePages(web);
  registerSettingsPages(web);
  registerAlertRulePages(web);
  registerWebhookSettingsPage(web);
  registerUsagePage(web);
  registerQuotaPages(web);
  registerProjectSettingsPages(web);
  registerManagePages(web);
  for (const prefix of PAGE_PREFIXES) {
    web.all(prefix, (c) => errorPage(c, 404, "There is no page at this address."));
  }
  return web;
}
