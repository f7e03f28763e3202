import type { Access } from "../accounts/access.ts";
import type { Services } from "../services.ts";

/**
 * Hono environment of API routes: the services, the caller's access, and
 * the scope the route needs (set by `requireScope`, checked per
 * organization by the lookups).
 */
export type ApiEnv = { Variables: { services: Services; access: Access; scope: string } };
