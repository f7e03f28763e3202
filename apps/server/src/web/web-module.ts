import type { StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { createAuthRoutes } from "./auth-routes.ts";

/**
 * The pages, served by api nodes beside the REST API: sign-in
 * (`createAuthRoutes`) so far. No work outlives a request, so `drain`
 * resolves at once.
 */
export function start(services: Services): StartedRole {
  const auth = createAuthRoutes(services);
  return { mount: (app) => app.route("/", auth), drain: async () => {} };
}
