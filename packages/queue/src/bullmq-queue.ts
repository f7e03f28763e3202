import { Queue, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { type JobHandler, type JobQueue, type JobWorker, PermanentJobError } from "./job-queue.ts";
import { JOBS, type JobDefinition, type JobPayload, type JobType } from "./jobs.ts";

export type BullmqQueueOptions = {
  redisUrl: string;
  /** Key prefix in Redis; tests use a fresh one each. */
  prefix: string;
  onError: (error: Error, context: string) => void;
};

/**
 * BullMQ's options for a job of `definition`: its attempts and exponential
 * backoff. Completed jobs are removed at once (Postgres records the
 * outcome); the last `keepFailed` failed jobs are kept for inspection.
 */
function jobOptions(definition: JobDefinition<never>) {
  return {
    attempts: definition.attempts,
    backoff: { type: "exponential", delay: definition.backoffMs },
    removeOnComplete: true,
    removeOnFail: definition.keepFailed,
  } as const;
}

/**
 * The production queue: BullMQ on Redis, one BullMQ queue per job type
 * (`JobDefinition.queue`). The producer's connection fails fast when Redis
 * is down (no offline queue), so ingest never waits on it; each worker's
 * connection retries forever, as BullMQ requires.
 */
export function createBullmqQueue(options: BullmqQueueOptions): JobQueue {
  const producer = new Redis(options.redisUrl, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  });
  producer.on("error", (error) => options.onError(error, "redis producer"));
  const queues = new Map<JobType, Queue>();
  const queueOf = (type: JobType): Queue => {
    let queue = queues.get(type);
    if (!queue) {
      queue = new Queue(JOBS[type].queue, { connection: producer, prefix: options.prefix });
      queue.on("error", (error) => options.onError(error, `bullmq queue ${type}`));
      queues.set(type, queue);
    }
    return queue;
  };
  const workers: Worker[] = [];
  const definition = <T extends JobType>(type: T) =>
    JOBS[type] as unknown as JobDefinition<JobPayload<T>>;

  return {
    kind: "bullmq",
    async enqueue(type, payloads) {
      const list = Array.isArray(payloads) ? payloads : [payloads];
      if (list.length === 0) return;
      const def = definition(type);
      await queueOf(type).addBulk(
        list.map((data) => ({
          name: def.name,
          data,
          opts: { ...jobOptions(def as JobDefinition<never>), jobId: def.jobId(data) },
        })),
      );
    },
    async requeue(type, payloads) {
      await this.enqueue(type, payloads);
      const def = definition(type);
      const queue = queueOf(type);
      const jobs = await Promise.all(payloads.map((p) => queue.getJob(def.jobId(p))));
      // Completed jobs are removed, so a job that has finished is a failed one.
      await Promise.all(jobs.map((job) => (job?.finishedOn ? job.retry("failed") : null)));
    },
    work<T extends JobType>(type: T, handler: JobHandler<T>, concurrency: number): JobWorker {
      const def = definition(type);
      const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
      connection.on("error", (error) => options.onError(error, "redis worker"));
      const worker = new Worker(
        def.queue,
        async (job) => {
          if (job.name !== def.name) throw new UnrecoverableError(`unknown job ${job.name}`);
          const parsed = def.payload.safeParse(job.data);
          if (!parsed.success)
            throw new UnrecoverableError(`bad ${job.name} payload: ${parsed.error.message}`);
          const attempt = job.attemptsMade + 1;
          try {
            await handler(parsed.data as JobPayload<T>, {
              attempt,
              final: attempt >= (job.opts.attempts ?? def.attempts),
            });
          } catch (error) {
            if (error instanceof PermanentJobError) throw new UnrecoverableError(error.message);
            throw error;
          }
        },
        // A killed worker's jobs go back to wait within about 20-40 s (a 20 s
        // lock, checked every 10 s); a job stalled twice is failed (BullMQ's
        // maxStalledCount 1), and a sweeper retries it (`requeue`).
        {
          connection,
          prefix: options.prefix,
          concurrency,
          lockDuration: 20_000,
          stalledInterval: 10_000,
        },
      );
      worker.on("error", (error) => options.onError(error, `bullmq worker ${type}`));
      workers.push(worker);
      return {
        async close() {
          await worker.close();
          connection.disconnect();
        },
      };
    },
    async depth(type) {
      const types = type ? [type] : (Object.keys(JOBS) as JobType[]);
      let total = 0;
      for (const t of types) {
        const counts = await queueOf(t).getJobCounts("waiting", "active", "delayed", "prioritized");
        total += Object.values(counts).reduce((sum, n) => sum + n, 0);
      }
      return total;
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
      await Promise.all([...queues.values()].map((q) => q.close()));
      producer.disconnect();
    },
  };
}
