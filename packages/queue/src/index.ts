export { type BullmqQueueOptions, createBullmqQueue } from "./bullmq-queue.ts";
export { createInProcessQueue } from "./in-process-queue.ts";
export type { EventProcessHandler, JobQueue, JobWorker } from "./job-queue.ts";
export {
  EVENT_PROCESS,
  type EventProcessPayload,
  eventProcessJobId,
  eventProcessPayload,
} from "./jobs.ts";
