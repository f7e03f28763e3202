import type { EventProcessPayload } from "./jobs.ts";

export type EventProcessHandler = (payload: EventProcessPayload) => Promise<void>;

/** A running consumer of the queue. */
export type JobWorker = {
  /** Stops taking jobs and waits for the active ones to finish. */
  close(): Promise<void>;
};

/**
 * The queue of `event.process` jobs, whatever carries it: BullMQ on Redis
 * in production, an in-process runner in the embedded mode.
 */
export type JobQueue = {
  readonly kind: "bullmq" | "in-process";
  /** Adds jobs in bulk; a job already queued for the same event is not added twice. */
  enqueueEvents(payloads: EventProcessPayload[]): Promise<void>;
  /**
   * For the sweeper: enqueues like `enqueueEvents`, and retries a job kept
   * as failed for the same event (it used up its attempts, e.g. through a
   * long outage), which would otherwise block the new one.
   */
  requeueEvents(payloads: EventProcessPayload[]): Promise<void>;
  /** Starts processing with at most `concurrency` jobs at once. */
  startWorker(handler: EventProcessHandler, concurrency: number): JobWorker;
  /** Jobs waiting, delayed or active. */
  depth(): Promise<number>;
  /** Whether the queue's backing store answers (always true in process). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
};
