/** The roles one `sluice serve` process can take (DESIGN.md "Roles"). */
export const ROLES = ["ingest", "api", "worker"] as const;
export type Role = (typeof ROLES)[number];

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
