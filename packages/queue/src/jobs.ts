import { z } from "zod";

/**
 * One job type, declared once: its name, the BullMQ queue that carries it,
 * the zod schema of its payload, its retry budget (attempts, exponential
 * backoff from `backoffMs`) and the id that keeps one queued job per unit
 * of work (BullMQ ids must not contain `:`).
 */
export type JobDefinition<Payload> = {
  name: string;
  /**
   * The BullMQ queue. One queue per job type, so that a node of an older
   * release, which consumes only the queues it knows, never takes a job it
   * cannot run (docs/architecture.md §5.5).
   */
  queue: string;
  payload: z.ZodType<Payload>;
  attempts: number;
  backoffMs: number;
  /** Failed jobs BullMQ keeps for inspection. */
  keepFailed: number;
  jobId(payload: Payload): string;
};

/**
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

/**
 * `alert.deliver` sends one notification: the `alert_deliveries` row
 * `deliveryId` (one action of one rule firing for one issue). Postgres
 * records whether it was delivered, so a job run twice sends once unless
 * the first run died between the send and its commit.
 */
export const alertDeliverPayload = z.object({
  deliveryId: z.number().int().positive(),
});

export type AlertDeliverPayload = z.infer<typeof alertDeliverPayload>;

/**
 * The job catalog: every job type Sluice runs.
 *
 * - `event.process`: 8 attempts with exponential backoff from 500 ms (about
 *   2 minutes in all) ride out a database restart; after that the sweeper
 *   re-enqueues. It keeps BullMQ queue `events`, as every release before it.
 * - `alert.deliver`: 12 attempts from 1 s (about 68 minutes in all) ride out
 *   a receiver that is down or rate-limiting; then the delivery is failed
 *   and the rule shows the error.
 */
export const JOBS = {
  "event.process": {
    name: "event.process",
    queue: "events",
    payload: eventProcessPayload,
    attempts: 8,
    backoffMs: 500,
    keepFailed: 1000,
    jobId: (p: EventProcessPayload) => `${p.projectId}-${p.eventId}`,
  } satisfies JobDefinition<EventProcessPayload>,
  "alert.deliver": {
    name: "alert.deliver",
    queue: "alerts",
    payload: alertDeliverPayload,
    attempts: 12,
    backoffMs: 1000,
    keepFailed: 1000,
    jobId: (p: AlertDeliverPayload) => `delivery-${p.deliveryId}`,
  } satisfies JobDefinition<AlertDeliverPayload>,
} as const;

/** The name of a job type of the catalog. */
export type JobType = keyof typeof JOBS;

/** The payload of job type `T`. */
export type JobPayload<T extends JobType> = z.infer<(typeof JOBS)[T]["payload"]>;

/** Kept for callers of the first catalog: the name of the event job. */
export const EVENT_PROCESS = "event.process" satisfies JobType;

/** Job id that keeps one queued job per event. */
export function eventProcessJobId(payload: EventProcessPayload): string {
  return JOBS["event.process"].jobId(payload);
}

/** The delay before retry `attempt` (1 = the first retry): exponential from `backoffMs`. */
export function backoffDelay(definition: { backoffMs: number }, attempt: number): number {
  return definition.backoffMs * 2 ** (attempt - 1);
}
