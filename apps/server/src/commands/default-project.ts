import { createProjectKey, ensureOrganization, ensureProject, listProjectKeys } from "@sluice/db";
import { formatDsn } from "@sluice/protocol";
import type { Services } from "../services.ts";

/**
 * Creates the organization (when missing) and the project with one DSN key,
 * and returns the project and its first key's DSN. Used by
 * `sluice projects create` and the embedded first start.
 */
export async function createProjectWithKey(
  services: Services,
  orgSlug: string,
  projectSlug: string,
) {
  const { orm } = services.db;
  const org = await ensureOrganization(orm, orgSlug, orgSlug);
  const { created, project } = await ensureProject(orm, org.id, projectSlug, projectSlug);
  const keys = await listProjectKeys(orm, project.id);
  const key = keys[0] ?? (await createProjectKey(orm, project.id));
  return {
    created,
    org,
    project,
    dsn: formatDsn(services.config.publicUrl, key.publicKey, project.id),
  };
}
