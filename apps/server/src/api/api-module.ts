import type { StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { createApiRoutes } from "./api-routes.ts";

/**
 * The api role: the Sentry REST API under `/api/0/` (`createApiRoutes`).
 * It keeps no work of its own past a request, so `drain` resolves at once;
 * the server's close waits for requests in flight.
 */
export function start(services: Services): StartedRole {
  const routes = createApiRoutes(services);
  return { mount: (app) => app.route("/", routes), drain: async () => {} };
}
