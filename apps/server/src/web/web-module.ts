import type { StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { createAuthRoutes } from "./auth-routes.ts";
import { createWebRoutes } from "./web-routes.tsx";

/**
 * The pages, served by api nodes beside the REST API: sign-in
 * (`createAuthRoutes`) and the web UI (`createWebRoutes`). No work
 * outlives a request, so `drain` resolves at once.
 */
export function start(services: Services): StartedRole {
  const auth = createAuthRoutes(services);
  const pages = createWebRoutes(services);
  return { mount: (app) => app.route("/", auth).route("/", pages), drain: async () => {} };
}
