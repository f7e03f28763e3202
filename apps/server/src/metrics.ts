import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Every Prometheus metric Sluice exports, on one registry per process. */
export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "sluice_process_" });
  const registers = [registry];
  return {
    registry,
    buildInfo: new Gauge({
      name: "sluice_build_info",
      help: "1, labelled with the release and commit this node runs and each role it serves.",
      labelNames: ["release", "commit", "role"],
      registers,
    }),
    httpRequests: new Counter({
      name: "sluice_http_requests_total",
      help: "HTTP requests answered, by route and status.",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    httpDuration: new Histogram({
      name: "sluice_http_request_duration_seconds",
      help: "Time from request to response, by route.",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    ingestItems: new Counter({
      name: "sluice_ingest_items_total",
      help: "Envelope items and store bodies seen by ingest, by item type and outcome.",
      labelNames: ["item_type", "outcome"],
      registers,
    }),
    ingestRejections: new Counter({
      name: "sluice_ingest_rejections_total",
      help: "Ingest requests answered with an error, by status.",
      labelNames: ["status"],
      registers,
    }),
    groupCommitDuration: new Histogram({
      name: "sluice_group_commit_duration_seconds",
      help: "Time of one group commit statement.",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    }),
    groupCommitEvents: new Histogram({
      name: "sluice_group_commit_events",
      help: "Events per group commit.",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers,
    }),
    enqueueFailures: new Counter({
      name: "sluice_queue_enqueue_failures_total",
      help: "Bulk enqueues that failed (the sweeper enqueues those events later).",
      registers,
    }),
    queueDepth: new Gauge({
      name: "sluice_queue_depth",
      help: "Event jobs (event.process and event.process.batch) waiting, delayed or active.",
      registers,
    }),
    jobs: new Counter({
      name: "sluice_jobs_total",
      help: "Jobs run, by job and result.",
      labelNames: ["job", "result"],
      registers,
    }),
    jobDuration: new Histogram({
      name: "sluice_job_duration_seconds",
      help: "Time to run one job.",
      labelNames: ["job"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
    retentionDeleted: new Counter({
      name: "sluice_retention_deleted_total",
      help: "What retention deleted, by kind (partitions, event_ids, event_failures, attachments, issues, blobs, upload_chunks, outcomes, default_events).",
      labelNames: ["kind"],
      registers,
    }),
    retentionRuns: new Counter({
      name: "sluice_retention_runs_total",
      help: "Retention runs, by result (done, partial, failed).",
      labelNames: ["result"],
      registers,
    }),
    sweeperRequeued: new Counter({
      name: "sluice_sweeper_requeued_total",
      help: "Unprocessed events the sweeper enqueued again.",
      registers,
    }),
    ingestBytesInFlight: new Gauge({
      name: "sluice_ingest_bytes_in_flight",
      help: "Request body bytes (wire and decoded) ingest holds right now.",
      registers,
    }),
    ingestShed: new Counter({
      name: "sluice_ingest_shed_total",
      help: "Ingest requests answered 503 without reading the body, because too many bytes were in flight.",
      registers,
    }),
    keyCacheLookups: new Counter({
      name: "sluice_ingest_key_lookups_total",
      help: "DSN key lookups by ingest, by result (hit, miss, invalid).",
      labelNames: ["result"],
      registers,
    }),
    eventsFailed: new Counter({
      name: "sluice_events_failed_total",
      help: "Events marked failed after too many processing failures, or at once for a decode error.",
      registers,
    }),
  };
}

/**
 * The `method` label of HTTP metrics: the methods Sluice serves, anything
 * else (WebDAV verbs, `PURGE`, `M-SEARCH`… which Node's parser accepts)
 * as `other`, so clients cannot mint series.
 */
export function methodLabel(method: string): string {
  return HTTP_METHODS.has(method) ? method : "other";
}

const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** A running metrics server: its port, and `close` (waits up to `timeoutMs` for open scrapes). */
export type MetricsServer = { port: number; close(timeoutMs?: number): Promise<void> };

/**
 * Serves `GET /metrics` (Prometheus text format) on its own port, apart
 * from the traffic port, so scrapes never go through the public load
 * balancer; every other path is 404. `beforeScrape` refreshes gauges that
 * are read on demand (it must not throw). Rejects when the port is taken.
 */
export async function startMetricsServer(
  metrics: Metrics,
  port: number,
  host: string,
  beforeScrape: () => Promise<void>,
): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "Content-Type": "application/json" }).end('{"detail":"Not Found"}');
      return;
    }
    beforeScrape()
      .then(() => metrics.registry.metrics())
      .then(
        (text) => res.writeHead(200, { "Content-Type": metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`metrics port ${port} on ${host} is already in use (set SLUICE_METRICS_PORT)`)
          : error,
      );
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close(timeoutMs = 1_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
