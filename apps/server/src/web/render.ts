import type { Context } from "hono";
import type { WebEnv } from "./web-env.ts";

/** Answers a page: the doctype, the rendered element, no caching (pages show live data). */
export function render(
  c: Context<WebEnv>,
  node: unknown,
  status: 200 | 400 | 403 | 404 | 409 | 413 | 500 = 200,
) {
  c.header("Cache-Control", "no-store");
  return c.html(`<!DOCTYPE html>${String(node)}`, status);
}
