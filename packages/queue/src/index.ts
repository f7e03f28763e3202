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
  type EventProcessBatchPayload,
  type EventProcessPayload,
  eventBatchPayloads,
  eventJobsDepth,
  eventProcessBatchPayload,
  eventProcessJobId,
  eventProcessPayload,
  JOBS,
  type JobPayload,
  type JobType,
  MAX_EVENTS_PER_BATCH_JOB,
} from "./jobs.ts";
