export { type BullmqQueueOptions, createBullmqQueue } from "./bullmq-queue.ts";
export { createInProcessQueue } from "./in-process-queue.ts";
export {
  type JobHandler,
  type JobQueue,
  type JobRun,
  type JobWorker,
  PermanentJobError,
} from "./job-queue.ts";
export {
  type AlertDeliverPayload,
  alertDeliverPayload,
  EVENT_PROCESS,
  type EventProcessPayload,
  eventProcessJobId,
  eventProcessPayload,
  JOBS,
  type JobPayload,
  type JobType,
} from "./jobs.ts";
