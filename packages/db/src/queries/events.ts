import { and, desc, eq } from "drizzle-orm";
import type { Orm } from "../database.ts";
import { payloadOfRow } from "../event-payload.ts";
import { eventIds, events } from "../schema.ts";

/** An event row with its payload read from whichever column holds it (event-payload.ts). */
export type StoredEventRow = Omit<typeof events.$inferSelect, "payload" | "payloadCompressed"> & {
  payload: Record<string, unknown>;
};

function decoded({
  payload,
  payloadCompressed,
  ...rest
}: typeof events.$inferSelect): StoredEventRow {
  return { ...rest, payload: payloadOfRow({ payload, payloadCompressed }) };
}

/** Events of an issue, newest first. */
export async function listIssueEvents(
  orm: Orm,
  issueId: number,
  limit: number,
  offset: number,
): Promise<StoredEventRow[]> {
  const rows = await orm
    .select()
    .from(events)
    .where(eq(events.issueId, issueId))
    .orderBy(desc(events.receivedAt), desc(events.eventId))
    .limit(limit)
    .offset(offset);
  return rows.map(decoded);
}

/**
 * One event by project and event id (32 hex). Reads `event_ids` first so
 * that the events query touches one day's partition only.
 */
export async function findEvent(
  orm: Orm,
  projectId: number,
  eventId: string,
): Promise<StoredEventRow | null> {
  const ids = await orm
    .select({ receivedAt: eventIds.receivedAt })
    .from(eventIds)
    .where(and(eq(eventIds.projectId, projectId), eq(eventIds.eventId, eventId)))
    .limit(1);
  const receivedAt = ids[0]?.receivedAt;
  if (!receivedAt) return null;
  const rows = await orm
    .select()
    .from(events)
    .where(
      and(
        eq(events.projectId, projectId),
        eq(events.eventId, eventId),
        eq(events.receivedAt, receivedAt),
      ),
    )
    .limit(1);
  return rows[0] ? decoded(rows[0]) : null;
}
