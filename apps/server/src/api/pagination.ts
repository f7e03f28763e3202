import type { Context } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";

type Page = { limit: number; offset: number };

const DEFAULT_PER_PAGE = 100;
const MAX_PER_PAGE = 100;

const perPage = z
  .string()
  .regex(/^\d{1,3}$/)
  .transform(Number)
  .pipe(z.number().min(1).max(MAX_PER_PAGE))
  .default(DEFAULT_PER_PAGE);

/**
 * Sentry's cursor `value:offset:is_prev` (src/sentry/utils/cursors.py
 * `Cursor.from_string`: three integers, the value may be a float). Only
 * the offset matters here; it stays a safe integer, so Postgres's bigint
 * OFFSET and the next page's arithmetic never overflow.
 */
const cursor = z
  .string()
  .regex(/^-?\d{1,20}(?:\.\d{1,20})?:\d{1,16}:-?\d{1,5}$/)
  .transform((s) => Number(s.split(":")[1]))
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER - MAX_PER_PAGE))
  .default(0);

/**
 * Reads `cursor` and `per_page` (or `limit`), answering 400 with Sentry's
 * details when either is malformed or out of range
 * (src/sentry/utils/pagination_factory.py). Clients treat cursors as opaque.
 */
function readPage(c: Context): Page {
  const limit = perPage.safeParse(c.req.query("per_page") ?? c.req.query("limit"));
  if (!limit.success) {
    throw new ApiError(400, `Invalid per_page value. Must be between 1 and ${MAX_PER_PAGE}.`);
  }
  const offset = cursor.safeParse(c.req.query("cursor") || undefined);
  if (!offset.success) throw new ApiError(400, "Invalid cursor parameter.");
  return { limit: limit.data, offset: offset.data };
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
