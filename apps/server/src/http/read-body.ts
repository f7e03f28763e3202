import { pipeline, Readable, type Transform } from "node:stream";
import { promisify } from "node:util";
import {
  brotliDecompress,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  createInflateRaw,
  gunzip,
  inflate,
  inflateRaw,
} from "node:zlib";

import type { ByteLease } from "./byte-budget.ts";

/**
 * Where a body's bytes come from: a web stream, or Node's request itself
 * (`IncomingMessage`), which ingest reads directly so that no web `Request`
 * and stream is built per request (that cut ingest's CPU per event by about
 * 15%, bench/RESULTS.md session 8). A Node request is never destroyed here: a body left
 * unread is drained by the server after the answer (@hono/node-server).
 */
export type BodySource = ReadableStream<Uint8Array> | Readable | null;

export type BodyFailure = { ok: false; status: 400 | 413 | 415 | 503; detail: string };

/** A whole body, or why it cannot be read (503: the process has too many bytes in flight). */
export type BodyResult = { ok: true; body: Buffer } | BodyFailure;

/** The first line of a body: `line` excludes the newline; `ended` when the body has no more. */
export type LineResult = { ok: true; line: Buffer; ended: boolean } | BodyFailure;

export type ReadBodyOptions = {
  /**
   * The request's share of the process's bytes in flight: wire bytes and
   * decoded bytes are taken from it as they are held; past it, reading
   * stops with a 503.
   */
  lease?: ByteLease;
};

/** Detail of the 503 answered when the process holds too many body bytes. */
export const SHED_DETAIL = "too many request bytes in flight; retry later";

const DECODED_CHUNK_BYTES = 64 * 1024;
/** Decoded pieces smaller than this are joined while a body is read whole. */
const COALESCE_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/** How one Content-Encoding is decoded: streaming, or in one call for small bodies. */
type Codec = {
  stream(firstBytes: Buffer): Transform;
  once(input: Buffer, options: { maxOutputLength: number }): Promise<Buffer>;
};

const gunzipOnce = promisify(gunzip);
const inflateOnce = promisify(inflate);
const inflateRawOnce = promisify(inflateRaw);
const brotliOnce = promisify(brotliDecompress);
const chunked = { chunkSize: DECODED_CHUNK_BYTES };
const gzipCodec: Codec = { stream: () => createGunzip(chunked), once: gunzipOnce };

const codecs: Record<string, Codec> = {
  gzip: gzipCodec,
  "x-gzip": gzipCodec,
  // HTTP's deflate is zlib-wrapped, but some clients send raw deflate: tell them apart by the zlib header.
  deflate: {
    stream: (first) => (isZlibHeader(first) ? createInflate(chunked) : createInflateRaw(chunked)),
    once: (input, options) =>
      isZlibHeader(input) ? inflateOnce(input, options) : inflateRawOnce(input, options),
  },
  br: { stream: () => createBrotliDecompress(chunked), once: brotliOnce },
};

/**
 * A compressed body of at most this many wire bytes is decoded in one zlib
 * call of at most `ONE_SHOT_DECODED_BYTES` output, cheaper than a stream
 * (nearly every event is this small); a larger body, or one that inflates
 * past it, is streamed.
 */
const ONE_SHOT_WIRE_BYTES = 64 * 1024;
const ONE_SHOT_DECODED_BYTES = 1024 * 1024;

/**
 * Reads a request body of at most `maxBytes` after decoding its
 * `Content-Encoding` (gzip, x-gzip, deflate, br; identity otherwise, as
 * Relay's `HttpEncoding::parse` treats unknown values). Memory stays bounded:
 * reading stops past `maxBytes` on the wire, decoding runs off the event loop
 * (in zlib's threads), in one call for small bodies and streaming for the
 * rest, and stops as soon as its output passes `maxBytes`, so a bomb costs
 * at most `maxBytes`. Chunked bodies work the same. `zstd`
 * gets a 415, since Node 20 has no decoder for it. With `options.lease`,
 * every byte held is taken from the process's budget first (503 past it).
 */
export async function readBody(
  stream: BodySource,
  contentEncoding: string | undefined,
  maxBytes: number,
  options: ReadBodyOptions = {},
): Promise<BodyResult> {
  const reader = openBody(stream, contentEncoding, maxBytes, options);
  return reader.ok ? reader.reader.readAll() : reader;
}

/**
 * Opens a body for reading in steps: `readLine` decodes only up to the first
 * newline (so the envelope header's DSN can be checked before the rest is
 * decoded), then `readAll` goes on to the end. Limits as in `readBody`.
 */
export function openBody(
  stream: BodySource,
  contentEncoding: string | undefined,
  maxBytes: number,
  options: ReadBodyOptions = {},
): { ok: true; reader: BodyReader } | BodyFailure {
  const encoding = contentEncoding?.trim().toLowerCase() ?? "identity";
  if (encoding === "zstd") {
    return {
      ok: false,
      status: 415,
      detail: "Content-Encoding zstd is not supported; use gzip or br",
    };
  }
  const codec = Object.hasOwn(codecs, encoding) ? codecs[encoding] : undefined;
  return {
    ok: true,
    reader: new BodyReader(stream, encoding, codec ?? null, maxBytes, options.lease ?? null),
  };
}

class BodyError extends Error {
  constructor(readonly failure: BodyFailure) {
    super(failure.detail);
  }
}

/** A body being read; see `openBody`. */
export class BodyReader {
  private readonly chunks: Buffer[] = [];
  private decodedBytes = 0;
  private wireBytes = 0;
  /** `findNewline` resumes at chunk `scanIndex`, which starts at byte `scanOffset`. */
  private scanIndex = 0;
  private scanOffset = 0;
  /** Small decoded pieces waiting to be joined, so that a trickle of tiny chunks stays a few objects. */
  private small: Buffer[] = [];
  private smallBytes = 0;
  private ended = false;
  private failure: BodyFailure | null = null;
  private source: AsyncIterator<Buffer> | null = null;
  private inspect: ((chunk: Buffer) => string | null) | null = null;

  constructor(
    private readonly stream: BodySource,
    private readonly encoding: string,
    private readonly decoder: Codec | null,
    private readonly maxBytes: number,
    private readonly lease: ByteLease | null,
  ) {}

  /** Decodes up to the first newline, or `maxLineBytes + 1` bytes when there is none that soon. */
  async readLine(maxLineBytes: number): Promise<LineResult> {
    while (true) {
      const found = this.findNewline(maxLineBytes + 1);
      if (found >= 0) return { ok: true, line: this.prefix(found), ended: false };
      if (this.decodedBytes > maxLineBytes) {
        return { ok: true, line: this.prefix(maxLineBytes + 1), ended: false };
      }
      if (this.ended) return { ok: true, line: this.prefix(this.decodedBytes), ended: true };
      const pulled = await this.pull(false);
      if (pulled) return pulled;
    }
  }

  /**
   * Decodes to the end and returns the whole body (including what `readLine`
   * saw). `inspect` sees every decoded byte in order as it arrives; a problem
   * it returns stops reading with a 400 naming it.
   */
  async readAll(inspect?: (chunk: Buffer) => string | null): Promise<BodyResult> {
    if (inspect) {
      this.inspect = inspect;
      for (const chunk of [...this.chunks, ...this.small]) {
        const problem = inspect(chunk);
        if (problem) return this.refuse(problem);
      }
    }
    while (!this.ended) {
      const pulled = await this.pull(true);
      if (pulled) return pulled;
    }
    this.joinSmall();
    const body =
      this.chunks.length === 1
        ? (this.chunks[0] as Buffer)
        : Buffer.concat(this.chunks, this.decodedBytes);
    // Keep one copy only: the pieces are garbage once joined.
    this.chunks.splice(0, this.chunks.length, body);
    return { ok: true, body };
  }

  /** Stops reading (the rest of the body is discarded). */
  async cancel(): Promise<void> {
    this.ended = true;
    await this.source?.return?.().catch(() => {});
    if (this.stream && !(this.stream instanceof Readable))
      await this.stream.cancel().catch(() => {});
  }

  private async refuse(detail: string): Promise<BodyFailure> {
    this.failure = { ok: false, status: 400, detail };
    await this.cancel();
    return this.failure;
  }

  private async pull(coalesce: boolean): Promise<BodyFailure | null> {
    if (this.failure) return this.failure;
    try {
      this.source ??= await this.openSource();
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        return null;
      }
      this.decodedBytes += next.value.length;
      if (this.decodedBytes > this.maxBytes) {
        throw new BodyError({
          ok: false,
          status: 413,
          detail: `decompressed body is larger than ${this.maxBytes} bytes`,
        });
      }
      this.hold();
      const problem = this.inspect?.(next.value);
      if (problem) throw new BodyError({ ok: false, status: 400, detail: problem });
      if (!coalesce || next.value.length >= COALESCE_BYTES) {
        this.joinSmall();
        this.chunks.push(next.value);
      } else {
        this.small.push(next.value);
        this.smallBytes += next.value.length;
        if (this.smallBytes >= COALESCE_BYTES) this.joinSmall();
      }
      return null;
    } catch (error) {
      this.failure =
        error instanceof BodyError
          ? error.failure
          : {
              ok: false,
              status: 400,
              detail: this.decoder
                ? `body is not valid ${this.encoding} data`
                : "the request body could not be read",
            };
      await this.cancel();
      return this.failure;
    }
  }

  /** Takes what the request holds (wire bytes, plus decoded ones when they are copies) from the budget. */
  private hold() {
    const held = this.wireBytes + (this.decoder ? this.decodedBytes : 0);
    if (this.lease && !this.lease.reserve(held)) {
      throw new BodyError({ ok: false, status: 503, detail: SHED_DETAIL });
    }
  }

  private async openSource(): Promise<AsyncIterator<Buffer>> {
    const wire = this.wireChunks();
    const codec = this.decoder;
    if (!codec) return wire;
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes <= ONE_SHOT_WIRE_BYTES) {
      const next = await wire.next();
      if (next.done) {
        ended = true;
        break;
      }
      head.push(next.value);
      headBytes += next.value.length;
    }
    const first = head[0];
    if (!first) return wire;
    if (ended) {
      const whole = head.length === 1 ? first : Buffer.concat(head, headBytes);
      const decoded = await this.decodeOnce(codec, whole);
      if (decoded) {
        return (async function* () {
          yield decoded;
        })();
      }
    }
    async function* all() {
      yield* head;
      yield* wire;
    }
    const decoder = codec.stream(first);
    // pipeline, not pipe: a wire failure (413, 503) must reach the reader as the decoder's error.
    pipeline(Readable.from(all()), decoder, () => {});
    return decoder[Symbol.asyncIterator]();
  }

  /**
   * Decodes a small body in one call, its output bounded and taken from the
   * budget before it is made; null when it inflates past the bound or the
   * budget has no room for the bound (the body is then streamed).
   */
  private async decodeOnce(codec: Codec, input: Buffer): Promise<Buffer | null> {
    const bound = Math.min(this.maxBytes + 1, ONE_SHOT_DECODED_BYTES);
    if (this.lease && !this.lease.reserve(this.wireBytes + bound)) return null;
    try {
      const decoded = await codec.once(input, { maxOutputLength: bound });
      this.lease?.trimTo(this.wireBytes + decoded.length);
      return decoded;
    } catch (error) {
      this.lease?.trimTo(this.wireBytes);
      if ((error as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE") throw error;
      if (bound > this.maxBytes) {
        throw new BodyError({
          ok: false,
          status: 413,
          detail: `decompressed body is larger than ${this.maxBytes} bytes`,
        });
      }
      return null;
    }
  }

  private async *wireChunks(): AsyncGenerator<Buffer> {
    if (!this.stream) return;
    const chunks: AsyncIterable<Uint8Array> =
      this.stream instanceof Readable
        ? this.stream.iterator({ destroyOnReturn: false })
        : this.stream;
    for await (const chunk of chunks) {
      this.wireBytes += chunk.byteLength;
      if (this.wireBytes > this.maxBytes) {
        throw new BodyError({
          ok: false,
          status: 413,
          detail: `request body is larger than ${this.maxBytes} bytes`,
        });
      }
      this.hold();
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  }

  private joinSmall() {
    if (this.small.length === 0) return;
    this.chunks.push(
      this.small.length === 1
        ? (this.small[0] as Buffer)
        : Buffer.concat(this.small, this.smallBytes),
    );
    this.small = [];
    this.smallBytes = 0;
  }

  /** Offset of the first newline among the first `limit` decoded bytes, or -1; each byte is scanned once. */
  private findNewline(limit: number): number {
    while (this.scanIndex < this.chunks.length && this.scanOffset < limit) {
      const chunk = this.chunks[this.scanIndex] as Buffer;
      const index = chunk.indexOf(NEWLINE);
      if (index >= 0) return this.scanOffset + index;
      this.scanOffset += chunk.length;
      this.scanIndex++;
    }
    return -1;
  }

  private prefix(length: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    return all.subarray(0, Math.min(length, all.length));
  }
}

function isZlibHeader(bytes: Buffer): boolean {
  const cmf = bytes[0];
  const flg = bytes[1];
  if (cmf === undefined || (cmf & 0x0f) !== 8) return false;
  return flg === undefined || ((cmf << 8) | flg) % 31 === 0;
}

const inflateAsync = promisify(inflate);

/**
 * Decodes the legacy `/store/` body form `base64(zlib(json))` that old SDKs
 * send without any header (relay-server/src/endpoints/store.rs).
 */
export async function decodeLegacyStoreBody(body: Buffer, maxBytes: number): Promise<BodyResult> {
  const text = body.toString("latin1").trim();
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text)) return { ok: true, body };
  try {
    return {
      ok: true,
      body: await inflateAsync(Buffer.from(text, "base64"), { maxOutputLength: maxBytes }),
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      return {
        ok: false,
        status: 413,
        detail: `decompressed body is larger than ${maxBytes} bytes`,
      };
    }
    return { ok: false, status: 400, detail: "store body is neither JSON nor base64 zlib data" };
  }
}
