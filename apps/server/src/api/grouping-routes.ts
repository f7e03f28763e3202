import type { Hono } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { registerIssueBulkRoutes } from "./issue-bulk-routes.ts";
import { registerIssueHashRoutes } from "./issue-hash-routes.ts";
import { registerProjectSettingsRoutes } from "./project-settings-routes.ts";

/**
 * What people do when grouping disagrees with them (issue #12): a project's
 * grouping rules, bulk status and merge of issues, an issue's hashes and
 * unmerge.
 */
export function registerGroupingRoutes(api: Hono<ApiEnv>): void {
  registerProjectSettingsRoutes(api);
  registerIssueBulkRoutes(api);
  registerIssueHashRoutes(api);
}
