import { z } from "zod";

/**
 * The job catalog: every job name with the zod schema of its payload.
 * `event.process` normalizes, groups and counts one stored event; it is
 * idempotent, so a job run twice (retry, sweeper) changes nothing more.
 */
export const eventProcessPayload = z.object({
  projectId: z.number().int().positive(),
  eventId: z.string().regex(/^[0-9a-f]{32}$/),
  /** ISO time the event was received: its partition key. */
  receivedAt: z.iso.datetime(),
});

export type EventProcessPayload = z.infer<typeof eventProcessPayload>;

export const EVENT_PROCESS = "event.process";

/** Job id that keeps one queued job per event (BullMQ ids must not contain `:`). */
export function eventProcessJobId(payload: EventProcessPayload): string {
  return `${payload.projectId}-${payload.eventId}`;
}
