/**
 * A TCP proxy in front of Postgres that records every statement its clients
 * run, with the parameters they bound: put it in a process's DATABASE_URL to
 * learn exactly which SQL a request made, then EXPLAIN those statements.
 * Bytes pass through unchanged; only the frontend messages are read
 * (protocol: postgresql.org/docs/15/protocol-message-formats.html): `Q`
 * (simple query), `P` (Parse: statement name, text) and `B` (Bind: portal,
 * statement name, parameter formats and values). No TLS: the client must
 * connect without it (node-postgres does unless asked).
 */
import { createServer, type Socket, connect as tcpConnect } from "node:net";

/** One statement as a client ran it: its text and its bound values (text, or bytes for binary). */
export type CapturedStatement = { text: string; values: (string | Buffer | null)[] };

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

/** Reads the frontend messages of one connection as its bytes arrive. */
function frontendReader(onStatement: (s: CapturedStatement) => void) {
  let buffer: Buffer = Buffer.alloc(0);
  let startup = true;
  const prepared = new Map<string, string>();
  const cstring = (b: Buffer, at: number): [string, number] => {
    const end = b.indexOf(0, at);
    return [b.toString("utf8", at, end), end + 1];
  };
  const message = (type: number, body: Buffer) => {
    if (type === 0x51 /* Q */) onStatement({ text: cstring(body, 0)[0], values: [] });
    if (type === 0x50 /* P */) {
      const [name, at] = cstring(body, 0);
      prepared.set(name, cstring(body, at)[0]);
    }
    if (type === 0x42 /* B */) {
      const [statement, afterNames] = cstring(body, cstring(body, 0)[1]);
      let at = afterNames;
      const formatCount = body.readInt16BE(at);
      at += 2;
      const formats: number[] = [];
      for (let i = 0; i < formatCount; i++, at += 2) formats.push(body.readInt16BE(at));
      const valueCount = body.readInt16BE(at);
      at += 2;
      const values: (string | Buffer | null)[] = [];
      for (let i = 0; i < valueCount; i++) {
        const length = body.readInt32BE(at);
        at += 4;
        if (length < 0) {
          values.push(null);
          continue;
        }
        const bytes = body.subarray(at, at + length);
        at += length;
        // One format code applies to every parameter; none means text.
        const format = formats.length === 1 ? formats[0] : (formats[i] ?? 0);
        values.push(format === 1 ? Buffer.from(bytes) : bytes.toString("utf8"));
      }
      onStatement({ text: prepared.get(statement) ?? "", values });
    }
  };
  return (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    for (;;) {
      if (startup) {
        if (buffer.length < 8) return;
        const length = buffer.readInt32BE(0);
        if (buffer.length < length) return;
        const code = buffer.readInt32BE(4);
        buffer = buffer.subarray(length);
        if (code !== SSL_REQUEST && code !== GSS_REQUEST) startup = false;
        continue;
      }
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (buffer.length < 1 + length) return;
      message(buffer[0] as number, buffer.subarray(5, 1 + length));
      buffer = buffer.subarray(1 + length);
    }
  };
}

/**
 * Starts the proxy on a free loopback port, forwarding to `target`.
 * `statements` fills as clients run queries; `stop` closes every connection.
 */
export async function startCaptureProxy(target: { host: string; port: number }): Promise<{
  port: number;
  statements: CapturedStatement[];
  stop: () => Promise<void>;
}> {
  const statements: CapturedStatement[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(target.port, target.host);
    sockets.add(client).add(upstream);
    const read = frontendReader((s) => statements.push(s));
    client.on("data", (chunk: Buffer) => {
      read(chunk);
      upstream.write(chunk);
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", close).on("error", close);
    upstream.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    port: address.port,
    statements,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
