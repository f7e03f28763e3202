import type { Context } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";

export type Page = { limit: number; offset: number };

const DEFAULT_PER_PAGE = 100;
const MAX_PER_PAGE = 100;

/**
 * Reads `cursor` and `per_page` (or `limit`). Cursors are Sentry's
 * `value:offset:is_prev` strings (src/sentry/api/paginator.py); clients treat
 * them as opaque, and here the offset is all that matters.
 */
function readPage(c: Context): Page {
  const perPage = c.req.query("per_page") ?? c.req.query("limit");
  const limit = perPage === undefined ? DEFAULT_PER_PAGE : Number.parseInt(perPage, 10);
  if (!Number.isInteger(limit) || limit < 1)
    throw new ApiError(400, "per_page must be a positive integer");
  const cursor = c.req.query("cursor");
  let offset = 0;
  if (cursor) {
    const parts = cursor.split(":");
    offset = Number.parseInt(parts[1] ?? "", 10);
    if (!Number.isInteger(offset) || offset < 0) throw new ApiError(400, "invalid cursor");
  }
  return { limit: Math.min(limit, MAX_PER_PAGE), offset };
}

/**
 * Sets Sentry's `Link` header, always with both `previous` and `next`, each
 * with `results` and `cursor` attributes (sentry src/sentry/api/base.py;
 * sentry-cli src/api/pagination.rs follows `next` while `results="true"`).
 * Pass one row more than the page holds to tell whether a next page exists.
 */
function setLinkHeader(c: Context, page: Page, fetchedRows: number, publicUrl: string): void {
  const hasNext = fetchedRows > page.limit;
  const hasPrevious = page.offset > 0;
  const url = new URL(c.req.url);
  const base = new URL(url.pathname + url.search, publicUrl);
  const link = (rel: string, offset: number, isPrev: number, results: boolean) => {
    const cursor = `0:${offset}:${isPrev}`;
    base.searchParams.set("cursor", cursor);
    return `<${base.toString()}>; rel="${rel}"; results="${results}"; cursor="${cursor}"`;
  };
  c.header(
    "Link",
    [
      link("previous", Math.max(0, page.offset - page.limit), 1, hasPrevious),
      link("next", page.offset + page.limit, 0, hasNext),
    ].join(", "),
  );
}

/**
 * One page of a list endpoint: reads the page from the query, asks `fetch`
 * for one row more than it holds (to know whether a next page exists), sets
 * the `Link` header and returns the page's rows.
 */
export async function pageOf<T>(
  c: Context<ApiEnv>,
  fetch: (limit: number, offset: number) => Promise<T[]>,
): Promise<T[]> {
  const page = readPage(c);
  const rows = await fetch(page.limit + 1, page.offset);
  setLinkHeader(c, page, rows.length, c.get("services").config.publicUrl);
  return rows.slice(0, page.limit);
}
