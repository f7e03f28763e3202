/**
 * Collects jobs that arrive within `windowMs` of the first (or until
 * `maxBatch` are waiting) and runs them as one batch; each caller gets its
 * own job's outcome. The worker's queue consumer runs many jobs at once,
 * each waiting here, so one batch gathers them. Outcomes are per job: the
 * batch function reports a job that failed alone; when the whole batch
 * throws, every job of it is run again as a batch of one, so one bad event
 * cannot fail its neighbours (the queue retries what still fails).
 */
export class JobBatcher<Job, Result> {
  private waiting: { job: Job; resolve: (r: Result) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly run: (
      jobs: Job[],
    ) => Promise<({ ok: true; result: Result } | { ok: false; error: unknown })[]>,
    private readonly options: { windowMs: number; maxBatch: number },
  ) {}

  /** Queues one job; resolves with its result or rejects with its error. */
  add(job: Job): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      if (this.waiting.length >= this.options.maxBatch) this.flush();
      else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.options.windowMs);
    });
  }

  private flush() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length > 0) void this.runBatch(batch, true);
  }

  private async runBatch(batch: typeof this.waiting, splitOnFailure: boolean): Promise<void> {
    try {
      const outcomes = await this.run(batch.map((w) => w.job));
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) w.resolve(outcome.result);
        else w.reject(outcome ? outcome.error : new Error("no outcome for this job"));
      });
    } catch (error) {
      if (!splitOnFailure || batch.length === 1) {
        for (const w of batch) w.reject(error);
        return;
      }
      await Promise.all(batch.map((w) => this.runBatch([w], false)));
    }
  }
}
