import type { Hono } from "hono";
import type { DirectRoutes } from "./http/direct-routes.ts";
import type { Services } from "./services.ts";

/**
 * The roles one `sluice serve` process can take (docs/architecture.md §1), in the
 * order they start and drain: ingest drains before the worker, so the jobs
 * of its last commits reach a queue that is still consumed. `alerts` sends
 * the notifications the worker's rule evaluation recorded in Postgres.
 */
export const ROLES = ["ingest", "api", "worker", "alerts"] as const;
export type Role = (typeof ROLES)[number];

/** Work that runs in the background until stopped (a sweeper, a maintenance job). */
export type Loop = { stop(): Promise<void> };

/**
 * A background loop as a module: the role that owns it lists it and starts
 * it; the composition root stops every loop after every role has drained.
 */
export type BackgroundLoop = { start(services: Services): Loop };

/**
 * What a started role gives the composition root: `mount`, which adds the
 * role's routes to the process's app (served on the traffic port, called
 * once, before the server listens), or `direct`, routes served ahead of the
 * app straight from Node's HTTP server, the `loops` it started, and `drain`,
 * called once the server no longer accepts connections, which resolves when
 * the role's own work in progress is finished.
 */
export type StartedRole = {
  mount?(app: Hono): void;
  direct?: DirectRoutes;
  loops?: Loop[];
  drain(): Promise<void>;
};

/**
 * A role's module (`ingest/ingest-module.ts`, `api/api-module.ts`,
 * `worker/worker-module.ts`), loaded with `import()` only when the process
 * takes that role. `start` may throw; nothing of the role runs then.
 */
export type RoleModule = { start(services: Services): StartedRole | Promise<StartedRole> };

/** Parses `--role=all|ingest|api|worker[,...]`; throws with the bad name. */
export function parseRoles(value: string): Set<Role> {
  const roles = new Set<Role>();
  for (const name of value.split(",").map((s) => s.trim())) {
    if (name === "all") for (const role of ROLES) roles.add(role);
    else if ((ROLES as readonly string[]).includes(name)) roles.add(name as Role);
    else throw new Error(`unknown role "${name}"; expected all, ${ROLES.join(", ")}`);
  }
  return roles;
}

/**
 * Without Redis, jobs run in the process that enqueued them, so ingest and
 * worker must share a process. Returns the problem, or null when the roles fit.
 */
export function checkRolesForQueue(roles: Set<Role>, hasRedis: boolean): string | null {
  if (hasRedis || roles.has("ingest") === roles.has("worker")) return null;
  return "REDIS_URL: required when ingest and worker run in separate processes (--role without both)";
}
