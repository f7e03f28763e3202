import { and, desc, eq, lt } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { auditLogEntries } from "../schema.ts";

export type AuditLogEntry = typeof auditLogEntries.$inferSelect;
export type NewAuditLogEntry = typeof auditLogEntries.$inferInsert;

export async function recordAuditLogEntry(orm: Orm, entry: NewAuditLogEntry): Promise<void> {
  await orm.insert(auditLogEntries).values(entry);
}

/** Newest first, keyset-paged by id (`beforeId` exclusive). */
export async function listAuditLogEntries(
  orm: Orm,
  organizationId: number,
  limit: number,
  beforeId: number | null,
  event: string | null,
): Promise<AuditLogEntry[]> {
  return orm
    .select()
    .from(auditLogEntries)
    .where(
      and(
        eq(auditLogEntries.organizationId, organizationId),
        beforeId === null ? undefined : lt(auditLogEntries.id, beforeId),
        event === null ? undefined : eq(auditLogEntries.event, event),
      ),
    )
    .orderBy(desc(auditLogEntries.id))
    .limit(limit);
}
