/**
 * A minimal HTTP/1.1 client for the load generator: pre-serialized requests
 * on keep-alive sockets, one request at a time per socket (as an SDK sends),
 * responses read only for their status and their end. It exists because the
 * generator shares the machine's cores with what it measures; see
 * open-loop-process.ts for what node:http's client costs here.
 */
import { connect, type Socket } from "node:net";

/** The whole request, head and body, in one buffer sent with one write. */
export function serializeRequest(
  target: URL,
  headers: Record<string, string>,
  body: Buffer,
): Buffer {
  const lines = [
    `POST ${target.pathname}${target.search} HTTP/1.1`,
    `host: ${target.host}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    `content-length: ${body.length}`,
  ];
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

/** A complete response at the start of a buffer: its status, its bytes, and whether the server closes after it. */
export type ResponseEnd = { status: number; bytes: number; close: boolean };

const CRLF = Buffer.from("\r\n");

/**
 * Where the response at the start of `buf` ends, or null while it is
 * incomplete. Bodies are delimited by `content-length` or chunked encoding
 * (RFC 9112 §6.3, §7.1); a response with neither is refused, since only
 * the connection's end would delimit it. Throws on a malformed head.
 */
export function responseEnd(buf: Buffer): ResponseEnd | null {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const head = buf.toString("latin1", 0, headEnd);
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!status) throw new Error(`not an HTTP/1.x response: ${JSON.stringify(head.slice(0, 40))}`);
  const close = /\r\nconnection: *close/i.test(head);
  const bodyStart = headEnd + 4;
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length) {
    const bytes = bodyStart + Number(length[1]);
    return buf.length >= bytes ? { status: Number(status[1]), bytes, close } : null;
  }
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) {
    throw new Error("a response without content-length or chunked encoding");
  }
  let at = bodyStart;
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, at);
    if (lineEnd < 0) return null;
    const size = Number.parseInt(buf.toString("latin1", at, lineEnd), 16);
    if (!Number.isFinite(size)) throw new Error("a malformed chunk size");
    if (size === 0) {
      // Trailer lines, then an empty line.
      let trailer = lineEnd + 2;
      for (;;) {
        const end = buf.indexOf(CRLF, trailer);
        if (end < 0) return null;
        if (end === trailer) return { status: Number(status[1]), bytes: end + 2, close };
        trailer = end + 2;
      }
    }
    at = lineEnd + 2 + size + 2;
    if (buf.length < at) return null;
  }
}

type Connection = {
  socket: Socket;
  pending: Buffer | null;
  done: ((status: number | null) => void) | null;
};

/**
 * Keep-alive sockets to one origin: a request goes on a free socket or a
 * new one, so concurrency follows the load, up to `maxSockets` (as
 * node:http's Agent does); beyond that, requests wait in order for a socket.
 * `done` gets the status, or null when the connection failed or closed
 * before the response ended.
 */
export class KeepAliveClient {
  readonly #free: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #waiting: { request: Buffer; done: (status: number | null) => void }[] = [];
  readonly #port: number;
  readonly #host: string;
  readonly #maxSockets: number;

  constructor(target: URL, maxSockets = 1024) {
    this.#port = Number(target.port || 80);
    this.#host = target.hostname;
    this.#maxSockets = maxSockets;
  }

  send(request: Buffer, done: (status: number | null) => void): void {
    const c = this.#free.pop() ?? (this.#all.size < this.#maxSockets ? this.#open() : undefined);
    if (!c) {
      this.#waiting.push({ request, done });
      return;
    }
    c.done = done;
    c.socket.write(request);
  }

  /** Closes every socket; requests still in flight or waiting end with null. */
  close(): void {
    for (const w of this.#waiting.splice(0)) w.done(null);
    for (const c of this.#all) c.socket.destroy();
  }

  #open(): Connection {
    const socket = connect(this.#port, this.#host);
    socket.setNoDelay(true);
    const c: Connection = { socket, pending: null, done: null };
    this.#all.add(c);
    socket.on("data", (chunk: Buffer) => this.#onData(c, chunk));
    const gone = () => {
      if (!this.#all.delete(c)) return;
      const i = this.#free.indexOf(c);
      if (i >= 0) this.#free.splice(i, 1);
      this.#finish(c, null);
      this.#sendWaiting();
    };
    socket.on("error", gone);
    socket.on("close", gone);
    return c;
  }

  #onData(c: Connection, chunk: Buffer): void {
    const buf = c.pending ? Buffer.concat([c.pending, chunk]) : chunk;
    let end: ResponseEnd | null;
    try {
      end = responseEnd(buf);
    } catch {
      c.socket.destroy();
      return;
    }
    if (!end) {
      c.pending = buf;
      return;
    }
    c.pending = null;
    this.#finish(c, end.status);
    if (end.close || buf.length > end.bytes) {
      c.socket.destroy();
      return;
    }
    this.#free.push(c);
    this.#sendWaiting();
  }

  /** A socket was freed or closed: the oldest waiting request takes its place. */
  #sendWaiting(): void {
    const next = this.#waiting.shift();
    if (next) this.send(next.request, next.done);
  }

  #finish(c: Connection, status: number | null): void {
    const done = c.done;
    c.done = null;
    done?.(status);
  }
}
