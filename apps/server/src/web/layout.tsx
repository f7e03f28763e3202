import type { Child } from "hono/jsx";
import { isInstanceAdmin, type Viewer } from "../accounts/access.ts";
import { assetUrl } from "./assets.ts";

/** Which part of the navigation a page belongs to (marked `aria-current`). */
export type Section =
  | "issues"
  | "releases"
  | "alerts"
  | "stats"
  | "projects"
  | "members"
  | "account"
  | "manage"
  | null;

export type LayoutProps = {
  /** The document title (the page's h1 is the page's own). */
  title: string;
  viewer: Viewer | null;
  /** The organization the page is in, for the navigation; null outside one. */
  org?: { slug: string; name: string } | null;
  section?: Section;
  children?: Child;
};

/**
 * The page frame every page uses, the sign-in page included: a skip link,
 * the top bar (organization navigation, "Admin" for a superuser, the
 * signed-in user, "Sign out" as a POST form carrying the CSRF token) and
 * `<main>`. Reads without JavaScript;
 * the script only adds conveniences.
 */
export function Layout({ title, viewer, org, section, children }: LayoutProps) {
  const link = (href: string, label: string, which: Section) => (
    <li>
      <a href={href} aria-current={section === which ? "page" : undefined}>
        {label}
      </a>
    </li>
  );
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} — Sluice`}</title>
        <link rel="stylesheet" href={assetUrl("sluice.css")} />
        <script src={assetUrl("sluice.js")} defer />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/">
            Sluice
          </a>
          {org && viewer ? (
            <nav aria-label="Organization">
              <ul>
                {link(`/organizations/${org.slug}/issues/`, "Issues", "issues")}
                {link(`/organizations/${org.slug}/releases/`, "Releases", "releases")}
                {link(`/organizations/${org.slug}/alerts/rules/`, "Alerts", "alerts")}
                {link(`/organizations/${org.slug}/stats/`, "Stats", "stats")}
                {link(`/settings/${org.slug}/projects/`, "Projects", "projects")}
                {link(`/settings/${org.slug}/members/`, "Members", "members")}
              </ul>
            </nav>
          ) : null}
          {viewer ? (
            <div class="who">
              {isInstanceAdmin(viewer.caller) ? (
                <a href="/manage/fleet/" aria-current={section === "manage" ? "page" : undefined}>
                  Admin
                </a>
              ) : null}
              <a
                href="/settings/account/"
                aria-current={section === "account" ? "page" : undefined}
              >
                {viewer.user.name ?? viewer.user.email}
              </a>
              <form class="inline" method="post" action="/auth/logout/">
                <input type="hidden" name="csrf" value={viewer.csrfToken} />
                <button type="submit">Sign out</button>
              </form>
            </div>
          ) : null}
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}
