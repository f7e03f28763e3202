import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../logger.ts";
import { type Metrics, methodLabel } from "../metrics.ts";

/** A request a direct route serves: Node's request, its path and its query (after `?`, raw). */
export type DirectRequest = { incoming: IncomingMessage; path: string; query: string };

/** A direct route's answer: status, headers, and a body (text, or none). */
export type DirectAnswer = {
  status: number;
  headers: Record<string, string>;
  body: string | null;
};

/** A matched direct route: `pattern` is its label in the HTTP metrics. */
export type DirectRoute = {
  pattern: string;
  handle(request: DirectRequest): Promise<DirectAnswer>;
};

/**
 * Routes served straight from Node's HTTP server, before the Hono app: the
 * route of a request's method and path, or null for the app to serve it.
 * Ingest's routes are served so because they are the hot path: the app's
 * web `Request`, context, router and `Response` cost about 30 µs of CPU per
 * request (bench/RESULTS.md, session 12).
 */
export type DirectRoutes = (method: string, path: string) => DirectRoute | null;

/** What `serveDirect` needs from the process: its metrics, log, and whether it drains. */
export type DirectDeps = {
  metrics: Metrics;
  log: Logger;
  draining: () => boolean;
};

/**
 * Serves one request with `route` and writes its answer, counted in the
 * same HTTP metrics as the app's routes. An answer sent before the request's
 * body was read to its end (a refusal), or while the process drains, carries
 * `Connection: close`: what is left of the body must not be read as the
 * connection's next request (RFC 9112 §9.6), and a draining node sends
 * clients elsewhere. A handler that throws is a 500 `{"detail": ...}` and
 * an error in the log; handlers answer their own failures.
 */
export async function serveDirect(
  route: DirectRoute,
  request: DirectRequest,
  res: ServerResponse,
  deps: DirectDeps,
): Promise<void> {
  const started = performance.now();
  let answer: DirectAnswer;
  try {
    answer = await route.handle(request);
  } catch (error) {
    deps.log.error({ err: error, path: request.path }, "request failed");
    answer = {
      status: 500,
      headers: { "Content-Type": "application/json" },
      body: '{"detail":"internal error"}',
    };
  }
  const headers = answer.headers;
  if (deps.draining() || !bodyArrived(request.incoming)) headers.Connection = "close";
  if (answer.body !== null) headers["Content-Length"] = String(Buffer.byteLength(answer.body));
  try {
    if (!res.destroyed) {
      res.writeHead(answer.status, headers);
      res.end(answer.body ?? undefined);
    }
  } catch (error) {
    // A header Node refuses: never a crash; the client sees the connection end.
    deps.log.error({ err: error, path: request.path }, "answer could not be written");
    res.destroy();
  }
  const labels = { method: methodLabel(request.incoming.method ?? ""), route: route.pattern };
  deps.metrics.httpRequests.inc({ ...labels, status: answer.status });
  deps.metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
}

/**
 * Whether the request's body was read to its end, or none was declared (a
 * preflight's: Node never marks an unread empty body ended). Otherwise the
 * connection closes with the answer, even when the rest of the body may
 * already be in: the handler refused it, and reading it is not its job.
 */
function bodyArrived(incoming: IncomingMessage): boolean {
  if (incoming.readableEnded) return true;
  const { "transfer-encoding": chunked, "content-length": length } = incoming.headers;
  return chunked === undefined && (length === undefined || length === "0");
}
