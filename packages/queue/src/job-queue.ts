import type { JobPayload, JobType } from "./jobs.ts";

/** What a handler knows about the run: which attempt (1 = first) and whether it is the last. */
export type JobRun = { attempt: number; final: boolean };

/**
 * Runs one job. Throwing makes the queue retry it with backoff, until its
 * attempts are used up; throwing `PermanentJobError` stops at once.
 */
export type JobHandler<T extends JobType> = (payload: JobPayload<T>, run: JobRun) => Promise<void>;

/** An error no retry can fix: the job fails at once. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}

/** A running consumer of one job type. */
export type JobWorker = {
  /** Stops taking jobs and waits for the active ones to finish. */
  close(): Promise<void>;
};

/**
 * The typed job queue (catalog in `jobs.ts`), whatever carries it: BullMQ
 * on Redis in production, an in-process runner in the embedded mode. Both
 * give every job type its own attempts and backoff from the catalog, and
 * both keep one queued job per job id.
 */
export type JobQueue = {
  readonly kind: "bullmq" | "in-process";
  /** Adds jobs; a job already queued with the same job id is not added twice. */
  enqueue<T extends JobType>(type: T, payloads: JobPayload<T> | JobPayload<T>[]): Promise<void>;
  /**
   * For sweepers: enqueues like `enqueue`, and retries a job kept as failed
   * with the same id (it used up its attempts, e.g. through a long outage),
   * which would otherwise block the new one.
   */
  requeue<T extends JobType>(type: T, payloads: JobPayload<T>[]): Promise<void>;
  /** Starts running jobs of `type`, at most `concurrency` at once. */
  work<T extends JobType>(type: T, handler: JobHandler<T>, concurrency: number): JobWorker;
  /** Jobs waiting, delayed or active, of `type` or of every type. */
  depth(type?: JobType): Promise<number>;
  /** Whether the queue's backing store answers (always true in process). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
};
