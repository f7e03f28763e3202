import type { EventProcessPayload } from "@sluice/queue";
import pLimit from "p-limit";
import type { BackgroundLoop, StartedRole } from "../roles.ts";
import type { Services } from "../services.ts";
import { maintenanceLoop, sweeperLoop } from "./background-loops.ts";
import { createEventSymbolicator } from "./event-symbolicator.ts";
import { createGroupingRulesLookup } from "./grouping-rules-cache.ts";
import { JobBatcher } from "./job-batcher.ts";
import { processEvents } from "./process-event.ts";
import { createReleaseSeenRecorder } from "./release-seen.ts";

/** How long the worker's first job of a batch waits for company (ms). */
const WORKER_BATCH_WINDOW_MS = 5;

/** The loops every worker process runs; each takes its lease, so one node at a time works. */
const WORKER_LOOPS: BackgroundLoop[] = [sweeperLoop, maintenanceLoop];

/**
 * The worker role: consumes `event.process` jobs, `config.workerConcurrency`
 * at once, and `event.process.batch` jobs (ingest's, one per commit),
 * gathered by a `JobBatcher` into batches for `processEvents` with at most
 * `workerConcurrency` events in flight across both kinds, and counts
 * each event in `sluice_jobs_total` and `sluice_job_duration_seconds` as an
 * `event.process` job;
 * it also starts the sweeper and maintenance loops. `drain` stops taking
 * jobs and resolves when the active ones have finished (the loops are
 * stopped by the caller, after every role has drained).
 */
export function start(services: Services): StartedRole {
  const { config, db, queue, log, metrics } = services;
  const deps = {
    db,
    log,
    symbolicate: createEventSymbolicator(db, services.blobs, config.sourceMapCacheBytes),
    recordRelease: createReleaseSeenRecorder(db),
    groupingRules: createGroupingRulesLookup(db),
    maxFailures: config.maxEventFailures,
    onFailed: (events: number) => metrics.eventsFailed.inc(events),
  };
  const batcher = new JobBatcher((jobs: EventProcessPayload[]) => processEvents(deps, jobs), {
    windowMs: WORKER_BATCH_WINDOW_MS,
    maxBatch: config.workerConcurrency,
  });
  // At most `workerConcurrency` events in flight whichever jobs carry them:
  // a batch job holds up to 500, and a backlog of them must not all load at once.
  const eventSlots = pLimit(config.workerConcurrency);
  /** One event's processing, counted as one `event.process` job whichever job carried it. */
  const processOne = (job: EventProcessPayload) => eventSlots(() => processInSlot(job));
  const processInSlot = async (job: EventProcessPayload) => {
    const started = performance.now();
    try {
      const result = await batcher.add(job);
      metrics.jobs.inc({ job: "event.process", result });
      if (result === "missing") log.warn({ job }, "event.process: no such event");
    } catch (error) {
      metrics.jobs.inc({ job: "event.process", result: "error" });
      throw error;
    } finally {
      metrics.jobDuration.observe({ job: "event.process" }, (performance.now() - started) / 1000);
    }
  };
  const workers = [
    queue.work("event.process", processOne, config.workerConcurrency),
    // A batch job's events go through the same batcher; the job is retried
    // while any of them fails, and those already processed are skipped then.
    queue.work(
      "event.process.batch",
      async ({ events }) => {
        const outcomes = await Promise.allSettled(events.map(processOne));
        const failed = outcomes.find((o) => o.status === "rejected");
        if (failed) throw failed.reason;
      },
      config.workerConcurrency,
    ),
  ];
  return {
    loops: WORKER_LOOPS.map((loop) => loop.start(services)),
    drain: async () => {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
