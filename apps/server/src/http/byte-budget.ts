/**
 * The request body bytes one process may hold at once (SLUICE_MAX_BYTES_IN_FLIGHT):
 * wire bytes as they are read and decoded bytes as they are produced. Ingest
 * takes bytes from it before it holds them and answers 503 when it cannot,
 * instead of growing until the process dies. `onChange` receives the bytes
 * held after every change (for the `sluice_ingest_bytes_in_flight` gauge).
 */
export class ByteBudget {
  private held = 0;

  constructor(
    readonly capacity: number,
    private readonly onChange: (held: number) => void = () => {},
  ) {}

  /** Bytes held right now. */
  get used(): number {
    return this.held;
  }

  /** A request's share of the budget; release it when the request ends. */
  lease(): ByteLease {
    return new ByteLease(this);
  }

  /** True when `bytes` more would fit right now (nothing is taken). */
  hasRoom(bytes: number): boolean {
    return this.held + bytes <= this.capacity;
  }

  /** Takes `bytes` if they fit; false (and nothing taken) if not. */
  tryTake(bytes: number): boolean {
    if (bytes <= 0) return true;
    if (this.held + bytes > this.capacity) return false;
    this.held += bytes;
    this.onChange(this.held);
    return true;
  }

  give(bytes: number): void {
    if (bytes <= 0) return;
    this.held = Math.max(0, this.held - bytes);
    this.onChange(this.held);
  }
}

/** The bytes one request holds; `release` gives them all back and is idempotent. */
export class ByteLease {
  private held = 0;

  constructor(private readonly budget: ByteBudget) {}

  /** Bytes this request holds. */
  get bytes(): number {
    return this.held;
  }

  /** Takes `bytes` more for this request; false when the process has no room for them. */
  take(bytes: number): boolean {
    if (!this.budget.tryTake(bytes)) return false;
    this.held += bytes;
    return true;
  }

  /** True when this request could hold `bytes` in all right now (nothing is taken). */
  wouldFit(bytes: number): boolean {
    return bytes <= this.held || this.budget.hasRoom(bytes - this.held);
  }

  /** Makes this request hold `bytes` in all (at least what it holds now), if they fit. */
  reserve(bytes: number): boolean {
    return bytes <= this.held || this.take(bytes - this.held);
  }

  /** Gives back what this request holds beyond `bytes`. */
  trimTo(bytes: number): void {
    if (this.held <= bytes) return;
    this.budget.give(this.held - bytes);
    this.held = bytes;
  }

  release(): void {
    this.budget.give(this.held);
    this.held = 0;
  }
}
