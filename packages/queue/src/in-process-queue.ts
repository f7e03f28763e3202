import { type JobHandler, type JobQueue, type JobWorker, PermanentJobError } from "./job-queue.ts";
import { backoffDelay, JOBS, type JobDefinition, type JobPayload, type JobType } from "./jobs.ts";

type Entry = { id: string; payload: unknown; attempts: number };

/** The runner of one job type: its waiting jobs, its handler, its retry timers. */
type Lane = {
  waiting: Entry[];
  queued: Set<string>;
  timers: Set<NodeJS.Timeout>;
  handler: JobHandler<JobType> | null;
  concurrency: number;
  active: number;
  idle: (() => void) | null;
};

/**
 * The embedded mode's queue: jobs run in this process, each job type with
 * the catalog's attempts and exponential backoff, one queued job per job
 * id. Nothing is lost when the process exits, because the work is durable
 * in Postgres (unprocessed events, pending deliveries) and sweepers
 * re-enqueue it.
 */
export function createInProcessQueue(onError: (error: Error, context: string) => void): JobQueue {
  const lanes = new Map<JobType, Lane>();
  const laneOf = (type: JobType): Lane => {
    let lane = lanes.get(type);
    if (!lane) {
      lane = {
        waiting: [],
        queued: new Set(),
        timers: new Set(),
        handler: null,
        concurrency: 1,
        active: 0,
        idle: null,
      };
      lanes.set(type, lane);
    }
    return lane;
  };

  const pump = (type: JobType) => {
    const lane = laneOf(type);
    while (lane.handler && lane.active < lane.concurrency && lane.waiting.length > 0) {
      const entry = lane.waiting.shift() as Entry;
      lane.active++;
      run(type, lane, lane.handler, entry).finally(() => {
        lane.active--;
        if (lane.active === 0 && lane.idle) lane.idle();
        pump(type);
      });
    }
  };

  const run = async (type: JobType, lane: Lane, handler: JobHandler<JobType>, entry: Entry) => {
    const def = JOBS[type] as unknown as JobDefinition<unknown>;
    const attempt = entry.attempts + 1;
    const parsed = def.payload.safeParse(entry.payload);
    if (!parsed.success) {
      // As BullMQ's runner does: a payload the catalog refuses fails at once.
      lane.queued.delete(entry.id);
      onError(new PermanentJobError(parsed.error.message), `bad ${type} payload`);
      return;
    }
    try {
      await handler(parsed.data as JobPayload<JobType>, {
        attempt,
        final: attempt >= def.attempts,
      });
      lane.queued.delete(entry.id);
    } catch (error) {
      entry.attempts = attempt;
      if (entry.attempts >= def.attempts || error instanceof PermanentJobError) {
        lane.queued.delete(entry.id);
        onError(error as Error, `${type} ${entry.id} failed ${entry.attempts} times`);
        return;
      }
      const timer = setTimeout(
        () => {
          lane.timers.delete(timer);
          lane.waiting.push(entry);
          pump(type);
        },
        backoffDelay(def, entry.attempts),
      );
      lane.timers.add(timer);
    }
  };

  return {
    kind: "in-process",
    async enqueue(type, payloads) {
      const def = JOBS[type] as unknown as JobDefinition<JobPayload<typeof type>>;
      const lane = laneOf(type);
      for (const payload of Array.isArray(payloads) ? payloads : [payloads]) {
        const id = def.jobId(payload);
        if (lane.queued.has(id)) continue;
        lane.queued.add(id);
        lane.waiting.push({ id, payload, attempts: 0 });
      }
      pump(type);
    },
    requeue(type, payloads) {
      // A job that used up its attempts is forgotten here, so enqueueing is retrying.
      return this.enqueue(type, payloads);
    },
    work(type, handler, concurrency): JobWorker {
      const lane = laneOf(type);
      lane.handler = handler as JobHandler<JobType>;
      lane.concurrency = concurrency;
      pump(type);
      return {
        async close() {
          lane.handler = null;
          if (lane.active > 0) await new Promise<void>((resolve) => (lane.idle = resolve));
        },
      };
    },
    async depth(type) {
      const counted = type ? [laneOf(type)] : [...lanes.values()];
      return counted.reduce((n, l) => n + l.waiting.length + l.active + l.timers.size, 0);
    },
    async ping() {
      return true;
    },
    async close() {
      for (const lane of lanes.values()) {
        lane.handler = null;
        for (const timer of lane.timers) clearTimeout(timer);
        lane.timers.clear();
      }
    },
  };
}
