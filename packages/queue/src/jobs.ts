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

/** Most events one `event.process.batch` job carries. */
export const MAX_EVENTS_PER_BATCH_JOB = 500;

/**
 * `event.process.batch` is `event.process` for the events one group commit
 * stored, in one job: ingest enqueues one job per commit instead of one per
 * event, and the worker fetches, locks and completes one job for them all
 * (BullMQ's per-job work in the client and Redis's Lua was about a tenth of
 * ingest's CPU; bench/RESULTS.md, #16).
 */
export const eventProcessBatchPayload = z.object({
  events: z.array(eventProcessPayload).min(1).max(MAX_EVENTS_PER_BATCH_JOB),
});

export type EventProcessBatchPayload = z.infer<typeof eventProcessBatchPayload>;

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
 * - `event.process.batch`: the same budget, in its own BullMQ queue
 *   `event-batches`, which releases before 0.5.0 do not consume: their
 *   sweepers pick up what waits there once it is `SLUICE_SWEEP_MIN_AGE_MS`
 *   old (docs/architecture.md §5.5). Its id is its first event's with
 *   `-batch`: an event is stored for the first time by one commit only.
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
  "event.process.batch": {
    name: "event.process.batch",
    queue: "event-batches",
    payload: eventProcessBatchPayload,
    attempts: 8,
    backoffMs: 500,
    keepFailed: 1000,
    jobId: (p: EventProcessBatchPayload) => {
      const first = p.events[0] as EventProcessPayload;
      return `${first.projectId}-${first.eventId}-batch`;
    },
  } satisfies JobDefinition<EventProcessBatchPayload>,
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

/**
 * Event jobs waiting, delayed or active, of both kinds (`event.process`
 * from sweepers and API re-processing, `event.process.batch` from ingest):
 * the backlog the queue-depth gauge and `sluice upgrade` report, in jobs.
 */
export async function eventJobsDepth(queue: {
  depth(type: JobType): Promise<number>;
}): Promise<number> {
  const [single, batches] = await Promise.all([
    queue.depth("event.process"),
    queue.depth("event.process.batch"),
  ]);
  return single + batches;
}

/**
 * Splits events into `event.process.batch` payloads of at most
 * `MAX_EVENTS_PER_BATCH_JOB` events each.
 */
export function eventBatchPayloads(events: EventProcessPayload[]): EventProcessBatchPayload[] {
  const payloads: EventProcessBatchPayload[] = [];
  for (let i = 0; i < events.length; i += MAX_EVENTS_PER_BATCH_JOB) {
    payloads.push({ events: events.slice(i, i + MAX_EVENTS_PER_BATCH_JOB) });
  }
  return payloads;
}

/** The delay before retry `attempt` (1 = the first retry): exponential from `backoffMs`. */
export function backoffDelay(definition: { backoffMs: number }, attempt: number): number {
  return definition.backoffMs * 2 ** (attempt - 1);
}
