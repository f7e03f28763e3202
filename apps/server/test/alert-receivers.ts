import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

/** One request an HTTP receiver got. */
type Received = { path: string; headers: IncomingHttpHeaders; raw: string; body: unknown };

/**
 * An HTTP receiver for webhooks, started by the test on a free port, that
 * can go down (its socket closed: connections refused) and come back on the
 * same port. `delayMs` holds each answer, for a test that kills a sender
 * while its request is open.
 */
export type HttpReceiver = {
  url: string;
  received: Received[];
  down(): Promise<void>;
  up(): Promise<void>;
  delayMs: number;
  close(): Promise<void>;
};

export async function startHttpReceiver(): Promise<HttpReceiver> {
  const received: Received[] = [];
  let server: Server | null = null;
  let port = 0;
  const receiver: HttpReceiver = {
    url: "",
    received,
    delayMs: 0,
    async up() {
      const s = createServer((req, res) => {
        let raw = "";
        req.setEncoding("utf8");
        req.on("data", (chunk) => (raw += chunk));
        req.on("end", () => {
          let body: unknown = null;
          try {
            body = JSON.parse(raw);
          } catch {}
          received.push({ path: req.url ?? "", headers: req.headers, raw, body });
          setTimeout(() => res.writeHead(200).end("ok"), receiver.delayMs);
        });
      });
      await new Promise<void>((resolve) => s.listen(port, "127.0.0.1", resolve));
      port = (s.address() as AddressInfo).port;
      receiver.url = `http://127.0.0.1:${port}`;
      server = s;
    },
    async down() {
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    close() {
      return receiver.down();
    },
  };
  await receiver.up();
  return receiver;
}

/** One message a test SMTP server accepted. */
export type Mail = { from: string; to: string[]; raw: string };

/** A real SMTP server (smtp-server) on a free port, no TLS, no auth; `url` is nodemailer's. */
export async function startSmtpServer(): Promise<{
  url: string;
  mails: Mail[];
  close(): Promise<void>;
}> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      let raw = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => (raw += chunk));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
