import { randomBytes } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { projectKeys } from "../schema.ts";

export type ProjectKey = typeof projectKeys.$inferSelect;

/** Creates a DSN key: 32 lowercase hex characters, as Sentry's public keys are. */
export async function createProjectKey(orm: Orm, projectId: number): Promise<ProjectKey> {
  const publicKey = randomBytes(16).toString("hex");
  const rows = await orm.insert(projectKeys).values({ projectId, publicKey }).returning();
  return rows[0] as ProjectKey;
}

export async function findProjectKey(orm: Orm, publicKey: string): Promise<ProjectKey | null> {
  const rows = await orm
    .select()
    .from(projectKeys)
    .where(eq(projectKeys.publicKey, publicKey))
    .limit(1);
  return rows[0] ?? null;
}

export async function listProjectKeys(orm: Orm, projectId: number): Promise<ProjectKey[]> {
  return orm
    .select()
    .from(projectKeys)
    .where(eq(projectKeys.projectId, projectId))
    .orderBy(asc(projectKeys.id));
}

export async function setProjectKeyActive(orm: Orm, id: number, isActive: boolean): Promise<void> {
  await orm.update(projectKeys).set({ isActive }).where(eq(projectKeys.id, id));
}
