import { Worker } from "node:worker_threads";
import { compressPayload, PAYLOAD_COMPRESSION } from "@sluice/db";

/**
 * The thread's code: plain CommonJS with Node's own modules only, so that it
 * runs the same from the bundle and from the sources (no loader, no file to
 * ship). It answers each batch with the payloads compressed as
 * `compressPayload` does, in order. A batch travels both ways as one
 * transferred buffer and the end offset of each payload in it: cloning a
 * Buffer copies all of the memory it views, and a clone per payload was 8%
 * of the main thread's CPU.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { deflateRawSync } = require("node:zlib");
const format = Buffer.of(workerData.format);
const options = { ...workerData.deflate, dictionary: Buffer.from(workerData.deflate.dictionary) };
parentPort.on("message", ({ id, bytes, ends }) => {
  const input = Buffer.from(bytes);
  const parts = [];
  const outEnds = [];
  let start = 0;
  let length = 0;
  for (const end of ends) {
    const part = Buffer.concat([format, deflateRawSync(input.subarray(start, end), options)]);
    parts.push(part);
    length += part.length;
    outEnds.push(length);
    start = end;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  parentPort.postMessage({ id, bytes: out.buffer, ends: outEnds }, [out.buffer]);
});
`;

/** Most payloads one message to the thread carries. */
const MAX_BATCH = 256;
/** The thread's V8 old generation (MiB); its young one is 4 MiB: it holds one batch at a time, in buffers outside the heap. */
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
    const { bytes, ends } = pack(batch.map((w) => w.payload));
    worker.postMessage({ id, bytes, ends }, [bytes]);
  }

  private thread(): Worker | null {
    if (this.worker) return this.worker;
    let worker: Worker;
    try {
      worker = new Worker(THREAD_SOURCE, {
        eval: true,
        workerData: PAYLOAD_COMPRESSION,
        resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB, maxYoungGenerationSizeMb: 4 },
      });
    } catch (error) {
      this.options.onFailure(error);
      return null;
    }
    // The thread must not keep a draining process alive.
    worker.unref();
    worker.on(
      "message",
      ({ id, bytes, ends }: { id: number; bytes: ArrayBuffer; ends: number[] }) => {
        const batch = this.inFlight.get(id);
        this.inFlight.delete(id);
        let start = 0;
        batch?.forEach((w, i) => {
          const end = ends[i] ?? start;
          w.resolve(
            end > start ? Buffer.from(bytes, start, end - start) : compressPayload(w.payload),
          );
          start = end;
        });
      },
    );
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

/** Payloads as one buffer (to transfer, not copy) and the end offset of each in it. */
function pack(payloads: (Buffer | string)[]): { bytes: ArrayBuffer; ends: number[] } {
  const buffers = payloads.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p));
  const ends: number[] = [];
  let length = 0;
  for (const b of buffers) {
    length += b.length;
    ends.push(length);
  }
  const bytes = new ArrayBuffer(length);
  const view = new Uint8Array(bytes);
  let at = 0;
  for (const b of buffers) {
    view.set(b, at);
    at += b.length;
  }
  return { bytes, ends };
}
