import { Worker } from "node:worker_threads";
import { compressPayload, PAYLOAD_COMPRESSION } from "@sluice/db";

/**
 * The thread's code: plain CommonJS with Node's own modules only, so that it
 * runs the same from the bundle and from the sources (no loader, no file to
 * ship). It answers each batch with the payloads compressed as
 * `compressPayload` does, in order.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { deflateRawSync } = require("node:zlib");
const format = Buffer.of(workerData.format);
const options = { ...workerData.deflate, dictionary: Buffer.from(workerData.deflate.dictionary) };
parentPort.on("message", ({ id, payloads }) => {
  const compressed = payloads.map((p) => Buffer.concat([format, deflateRawSync(p, options)]));
  parentPort.postMessage({ id, compressed });
});
`;

/** Most payloads one message to the thread carries. */
const MAX_BATCH = 256;
/** The thread's V8 heap (MiB): it holds one batch at a time. */
const THREAD_HEAP_MB = 32;

type Waiting = { resolve(compressed: Buffer): void; payload: Buffer | string };

export type CompressionThreadOptions = {
  /** Called when the thread fails; its batches are compressed on the calling thread. */
  onFailure(error: unknown): void;
};

/**
 * Compresses event payloads (`compressPayload`'s bytes exactly) on a thread
 * of its own, off the event loop that serves ingest's requests: compression
 * was a third of ingest's CPU at its peak (bench/RESULTS.md, #16). Payloads
 * asked for in one turn of the event loop go as one message. If the thread
 * dies or cannot start, what it held and what comes next until a new one is
 * up is compressed on the calling thread: `compress` never rejects.
 */
export class CompressionThread {
  private worker: Worker | null = null;
  private queued: Waiting[] = [];
  private scheduled = false;
  private nextId = 1;
  private readonly inFlight = new Map<number, Waiting[]>();
  private closed = false;

  constructor(private readonly options: CompressionThreadOptions) {}

  /** The payload's `compressPayload` bytes. */
  compress(payload: Buffer | string): Promise<Buffer> {
    if (this.closed) return Promise.resolve(compressPayload(payload));
    return new Promise((resolve) => {
      this.queued.push({ resolve, payload });
      if (this.queued.length >= MAX_BATCH) this.send();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.send());
      }
    });
  }

  /** Stops the thread; batches it holds are compressed here. */
  async close(): Promise<void> {
    this.closed = true;
    this.send();
    const worker = this.worker;
    this.worker = null;
    this.fallBack();
    await worker?.terminate();
  }

  private send() {
    this.scheduled = false;
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    const worker = this.closed ? null : this.thread();
    if (!worker) {
      for (const w of batch) w.resolve(compressPayload(w.payload));
      return;
    }
    const id = this.nextId++;
    this.inFlight.set(id, batch);
    worker.postMessage({ id, payloads: batch.map((w) => w.payload) });
  }

  private thread(): Worker | null {
    if (this.worker) return this.worker;
    let worker: Worker;
    try {
      worker = new Worker(THREAD_SOURCE, {
        eval: true,
        workerData: PAYLOAD_COMPRESSION,
        resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB },
      });
    } catch (error) {
      this.options.onFailure(error);
      return null;
    }
    // The thread must not keep a draining process alive.
    worker.unref();
    worker.on("message", ({ id, compressed }: { id: number; compressed: Uint8Array[] }) => {
      const batch = this.inFlight.get(id);
      this.inFlight.delete(id);
      batch?.forEach((w, i) => {
        const bytes = compressed[i];
        w.resolve(
          bytes
            ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
            : compressPayload(w.payload),
        );
      });
    });
    const failed = (error: unknown) => {
      if (this.worker !== worker) return;
      this.worker = null;
      if (!this.closed) this.options.onFailure(error);
      this.fallBack();
    };
    worker.on("error", failed);
    worker.on("exit", (code) => failed(new Error(`compression thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** Compresses here what was sent to a thread that is gone. */
  private fallBack() {
    for (const [id, batch] of this.inFlight) {
      this.inFlight.delete(id);
      for (const w of batch) w.resolve(compressPayload(w.payload));
    }
  }
}
