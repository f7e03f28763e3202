import type { EventRow, IngestBatch, OutcomeRow, StoredEvent } from "@sluice/db";

export type CommitResult =
  | { ok: true }
  | { ok: false; kind: "invalid"; detail: string }
  | { ok: false; kind: "unavailable"; detail: string };

export type GroupCommitterOptions = {
  /** How long the first write of a batch waits for company (ms). */
  windowMs: number;
  /** Events that flush a batch at once. */
  maxEvents: number;
  /** Batches being written at once (each holds one pooled connection). */
  maxInFlight: number;
  /** Requests waiting or being written past which `overloaded()` is true. */
  maxPending?: number;
};

type Pending = { writes: IngestBatch; resolve: (result: CommitResult) => void };

/** SQLSTATE classes caused by one row's data: retrying the rows alone finds it. */
const DATA_ERROR_CLASSES = new Set(["22", "23", "54"]);

/**
 * Group commit: the writes of requests that arrive within `windowMs` of each
 * other share one insert (`store`), then every request gets its answer. A
 * request is answered only after its batch committed, so a 200 means
 * durable. When a batch fails on bad data, its requests are written one by
 * one so only the guilty one fails (`invalid`); any other failure answers
 * every request of the batch `unavailable`. `onStored` receives the events
 * stored for the first time, after the commit, for the queue hand-off.
 */
export class GroupCommitter {
  private pending: Pending[] = [];
  private pendingEvents = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  /** Requests submitted and not yet answered (waiting or in a batch being written). */
  private unanswered = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly store: (batch: IngestBatch) => Promise<StoredEvent[]>,
    private readonly onStored: (events: StoredEvent[]) => void,
    private readonly onBatch: (events: number, seconds: number) => void,
    private readonly options: GroupCommitterOptions,
  ) {}

  /** Queues one request's writes; resolves when they are committed or have failed. */
  submit(writes: IngestBatch): Promise<CommitResult> {
    this.unanswered++;
    return new Promise<CommitResult>((resolve) => {
      this.pending.push({
        writes,
        resolve: (result) => {
          this.unanswered--;
          resolve(result);
        },
      });
      this.pendingEvents += writes.events.length;
      this.schedule();
    });
  }

  /**
   * True while more requests wait for their commit than `maxPending`: the
   * database is falling behind, and ingest answers new requests 503 before
   * reading their bodies (docs/protocol.md §5.3).
   */
  overloaded(): boolean {
    return this.options.maxPending !== undefined && this.unanswered >= this.options.maxPending;
  }

  /** Flushes what is pending and waits until nothing is in flight. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.inFlight > 0) {
      if (this.pending.length > 0 && this.inFlight < this.options.maxInFlight) this.flush();
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private schedule() {
    if (this.inFlight >= this.options.maxInFlight) return;
    if (this.pendingEvents >= this.options.maxEvents || this.options.windowMs === 0) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.windowMs);
    }
  }

  private flush() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingEvents = 0;
    this.inFlight++;
    this.write(batch).finally(() => {
      this.inFlight--;
      if (this.pending.length > 0) this.flush();
      for (const wake of this.idleWaiters.splice(0)) wake();
    });
  }

  private async write(batch: Pending[]) {
    const started = performance.now();
    const merged = mergeWrites(batch.map((p) => p.writes));
    try {
      const stored = await this.store(merged);
      this.onBatch(merged.events.length, (performance.now() - started) / 1000);
      for (const p of batch) p.resolve({ ok: true });
      if (stored.length > 0) this.onStored(stored);
    } catch (error) {
      const code = String((error as { code?: string }).code ?? "");
      if (!DATA_ERROR_CLASSES.has(code.slice(0, 2))) {
        for (const p of batch)
          p.resolve({ ok: false, kind: "unavailable", detail: "storage unavailable" });
        return;
      }
      if (batch.length === 1) {
        const only = batch[0] as Pending;
        if (only.writes.outcomes.length > 0 && hasData(only.writes)) {
          // Outcome counters are bookkeeping: they never cost a request its events.
          await this.write([{ ...only, writes: { ...only.writes, outcomes: [] } }]);
          return;
        }
        only.resolve({
          ok: false,
          kind: "invalid",
          detail: `event rejected by storage: ${(error as Error).message}`,
        });
        return;
      }
      for (const p of batch) await this.write([p]);
    }
  }
}

function hasData(writes: IngestBatch): boolean {
  return writes.events.length > 0 || writes.attachments.length > 0;
}

/**
 * Merges writes into one batch: events unique by (project, event_id), the
 * first one winning (a concurrent retry is one event); outcome increments
 * summed per key and sorted, so concurrent batches lock counters in one order.
 */
export function mergeWrites(all: IngestBatch[]): IngestBatch {
  const events = new Map<string, EventRow>();
  const outcomes = new Map<string, OutcomeRow>();
  const attachments = [];
  for (const writes of all) {
    for (const event of writes.events) {
      const key = `${event.projectId}:${event.eventId}`;
      if (!events.has(key)) events.set(key, event);
    }
    attachments.push(...writes.attachments);
    for (const o of writes.outcomes) {
      const key = `${o.projectId}\u0000${o.hour.toISOString()}\u0000${o.outcome}\u0000${o.category}\u0000${o.reason}`;
      const existing = outcomes.get(key);
      if (existing) existing.quantity += o.quantity;
      else outcomes.set(key, { ...o });
    }
  }
  const sortedOutcomes = [...outcomes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { events: [...events.values()], attachments, outcomes: sortedOutcomes.map(([, o]) => o) };
}
