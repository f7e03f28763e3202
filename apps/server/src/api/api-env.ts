import type { ApiToken } from "@sluice/db";
import type { Services } from "../services.ts";

/** Hono environment of API routes: the services and the caller's token. */
export type ApiEnv = { Variables: { services: Services; token: ApiToken } };
