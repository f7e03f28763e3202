import { Queue, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { EventProcessHandler, JobQueue, JobWorker } from "./job-queue.ts";
import {
  EVENT_PROCESS,
  type EventProcessPayload,
  eventProcessJobId,
  eventProcessPayload,
} from "./jobs.ts";

export type BullmqQueueOptions = {
  redisUrl: string;
  /** Key prefix in Redis; tests use a fresh one each. */
  prefix: string;
  onError: (error: Error, context: string) => void;
};

const QUEUE_NAME = "events";

/**
 * Retries: 8 attempts with exponential backoff from 500 ms (about 2 minutes
 * in all) ride out a database restart; after that the sweeper re-enqueues.
 * Completed jobs are removed at once (the event row records the outcome);
 * the last 1,000 failed jobs are kept for inspection.
 */
const JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: "exponential", delay: 500 },
  removeOnComplete: true,
  removeOnFail: 1000,
} as const;

/**
 * The production queue: BullMQ on Redis. The producer's connection fails
 * fast when Redis is down (no offline queue), so ingest never waits on it;
 * the worker's connection retries forever, as BullMQ requires.
 */
export function createBullmqQueue(options: BullmqQueueOptions): JobQueue {
  const producer = new Redis(options.redisUrl, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  });
  producer.on("error", (error) => options.onError(error, "redis producer"));
  const queue = new Queue(QUEUE_NAME, { connection: producer, prefix: options.prefix });
  queue.on("error", (error) => options.onError(error, "bullmq queue"));
  const workers: Worker[] = [];

  return {
    kind: "bullmq",
    async enqueueEvents(payloads: EventProcessPayload[]) {
      if (payloads.length === 0) return;
      await queue.addBulk(
        payloads.map((data) => ({
          name: EVENT_PROCESS,
          data,
          opts: { ...JOB_OPTIONS, jobId: eventProcessJobId(data) },
        })),
      );
    },
    async requeueEvents(payloads: EventProcessPayload[]) {
      await this.enqueueEvents(payloads);
      const jobs = await Promise.all(payloads.map((p) => queue.getJob(eventProcessJobId(p))));
      // Completed jobs are removed, so a job that has finished is a failed one.
      await Promise.all(jobs.map((job) => (job?.finishedOn ? job.retry("failed") : null)));
    },
    startWorker(handler: EventProcessHandler, concurrency: number): JobWorker {
      const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
      connection.on("error", (error) => options.onError(error, "redis worker"));
      const worker = new Worker(
        QUEUE_NAME,
        async (job) => {
          const parsed = eventProcessPayload.safeParse(job.data);
          if (!parsed.success)
            throw new UnrecoverableError(`bad ${job.name} payload: ${parsed.error.message}`);
          await handler(parsed.data);
        },
        // A killed worker's jobs go back to wait within about 20-40 s (BullMQ's
        // defaults: 30 s lock, 30 s checks, so up to 90 s); a job stalled twice
        // is failed, and the sweeper retries it (requeueEvents).
        {
          connection,
          prefix: options.prefix,
          concurrency,
          lockDuration: 20_000,
          stalledInterval: 10_000,
        },
      );
      worker.on("error", (error) => options.onError(error, "bullmq worker"));
      workers.push(worker);
      return {
        async close() {
          await worker.close();
          connection.disconnect();
        },
      };
    },
    async depth() {
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized");
      return Object.values(counts).reduce((sum, n) => sum + n, 0);
    },
    async ping() {
      try {
        return (await producer.ping()) === "PONG";
      } catch {
        return false;
      }
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await queue.close();
      producer.disconnect();
    },
  };
}
