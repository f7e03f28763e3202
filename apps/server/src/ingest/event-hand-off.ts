import type { StoredEvent } from "@sluice/db";
import {
  type EventProcessBatchPayload,
  type EventProcessPayload,
  eventBatchPayloads,
  MAX_EVENTS_PER_BATCH_JOB,
} from "@sluice/queue";

export type EventHandOffOptions = {
  /** Enqueues `event.process.batch` jobs; a rejection is passed to `onFailure`. */
  enqueue(payloads: EventProcessBatchPayload[]): Promise<void>;
  onFailure(error: unknown, events: number): void;
  /** Longest an event waits for others to share its job (ms). */
  windowMs: number;
};

/**
 * Gathers the events that group commits stored for the first time and
 * enqueues them together: at most one enqueue per `windowMs`, sooner when a
 * full job (`MAX_EVENTS_PER_BATCH_JOB`) is waiting. Group commits are a few
 * ms apart at high rates and BullMQ's client costs about as much for a job
 * of one event as for one of hundreds (bench/RESULTS.md, #16). Nothing is
 * lost if the process dies with events gathered: they are committed, and
 * the sweeper enqueues them (docs/architecture.md §5.5).
 */
export class EventHandOff {
  private gathered: EventProcessPayload[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly sending = new Set<Promise<void>>();

  constructor(private readonly options: EventHandOffOptions) {}

  /** Adds the events of one commit. */
  add(stored: StoredEvent[]): void {
    for (const e of stored) {
      this.gathered.push({
        projectId: e.projectId,
        eventId: e.eventId,
        receivedAt: e.receivedAt.toISOString(),
      });
    }
    if (this.gathered.length >= MAX_EVENTS_PER_BATCH_JOB) this.send();
    else if (this.gathered.length > 0 && !this.timer)
      this.timer = setTimeout(() => this.send(), this.options.windowMs);
  }

  /** Enqueues what is gathered and resolves when every enqueue started so far has ended. */
  async flush(): Promise<void> {
    this.send();
    await Promise.all(this.sending);
  }

  private send() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const events = this.gathered;
    if (events.length === 0) return;
    this.gathered = [];
    const sent = this.options
      .enqueue(eventBatchPayloads(events))
      .catch((error) => this.options.onFailure(error, events.length))
      .finally(() => this.sending.delete(sent));
    this.sending.add(sent);
  }
}
