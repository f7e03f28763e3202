import type { EventProcessHandler, JobQueue, JobWorker } from "./job-queue.ts";
import { type EventProcessPayload, eventProcessJobId } from "./jobs.ts";

/** Same retry budget as the BullMQ queue: 8 attempts, exponential from 500 ms. */
const MAX_ATTEMPTS = 8;
const BACKOFF_MS = 500;

type Entry = { payload: EventProcessPayload; attempts: number };

/**
 * The embedded mode's queue: jobs run in this process. Nothing is lost when
 * it exits, because events are durable in Postgres and the sweeper
 * re-enqueues any left unprocessed.
 */
export function createInProcessQueue(onError: (error: Error, context: string) => void): JobQueue {
  const waiting: Entry[] = [];
  const queued = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let handler: EventProcessHandler | null = null;
  let concurrency = 1;
  let active = 0;
  let idle: (() => void) | null = null;

  const pump = () => {
    while (handler && active < concurrency && waiting.length > 0) {
      const entry = waiting.shift() as Entry;
      active++;
      run(handler, entry).finally(() => {
        active--;
        if (active === 0 && idle) idle();
        pump();
      });
    }
  };

  const run = async (process: EventProcessHandler, entry: Entry) => {
    const id = eventProcessJobId(entry.payload);
    try {
      await process(entry.payload);
      queued.delete(id);
    } catch (error) {
      entry.attempts++;
      if (entry.attempts >= MAX_ATTEMPTS) {
        queued.delete(id);
        onError(error as Error, `event.process ${id} failed ${entry.attempts} times`);
        return;
      }
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          waiting.push(entry);
          pump();
        },
        BACKOFF_MS * 2 ** (entry.attempts - 1),
      );
      timers.add(timer);
    }
  };

  return {
    kind: "in-process",
    async enqueueEvents(payloads) {
      for (const payload of payloads) {
        const id = eventProcessJobId(payload);
        if (queued.has(id)) continue;
        queued.add(id);
        waiting.push({ payload, attempts: 0 });
      }
      pump();
    },
    requeueEvents(payloads) {
      // A job that used up its attempts is forgotten here, so enqueueing is retrying.
      return this.enqueueEvents(payloads);
    },
    startWorker(process, max): JobWorker {
      handler = process;
      concurrency = max;
      pump();
      return {
        async close() {
          handler = null;
          if (active > 0) await new Promise<void>((resolve) => (idle = resolve));
        },
      };
    },
    async depth() {
      return waiting.length + active + timers.size;
    },
    async ping() {
      return true;
    },
    async close() {
      handler = null;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
