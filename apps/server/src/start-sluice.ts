import { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { type ServerType, serve } from "@hono/node-server";
import { insertIngestBatch } from "@sluice/db";
import type { EventProcessPayload } from "@sluice/queue";
import { createApiRoutes } from "./api/api-routes.ts";
import { createApp, type HealthState } from "./http/create-app.ts";
import { GroupCommitter } from "./ingest/group-committer.ts";
import { registerIngestRoutes } from "./ingest/ingest-routes.ts";
import { createKeyCache } from "./ingest/key-cache.ts";
import { startMetricsServer } from "./metrics.ts";
import type { Role } from "./roles.ts";
import type { Services } from "./services.ts";
import { type Loop, startMaintenance, startSweeper } from "./worker/background-loops.ts";
import { createEventSymbolicator } from "./worker/event-symbolicator.ts";
import { JobBatcher } from "./worker/job-batcher.ts";
import { processEvents } from "./worker/process-event.ts";
import { createReleaseSeenRecorder } from "./worker/release-seen.ts";

/**
 * A running Sluice process. `stop` drains it: readiness fails at once, it
 * keeps serving for `delayMs` (so the load balancer notices), then stops
 * accepting and waits up to `timeoutMs` for in-flight requests, pending
 * group commits, queue hand-offs and active jobs. Resolves false when the
 * timeout cut that short (unfinished jobs are re-run: they are idempotent).
 */
export type RunningSluice = {
  url: string;
  port: number;
  /** Base URL of the metrics server (`{metricsUrl}/metrics`), on its own port. */
  metricsUrl: string;
  stop(options?: { delayMs: number; timeoutMs: number }): Promise<boolean>;
};

/** How long the worker's first job of a batch waits for company (ms). */
const WORKER_BATCH_WINDOW_MS = 5;

/**
 * Serves the given roles on `port` (0: any free port) with the services
 * built at start, and `/metrics` on `config.metricsPort` of the same host;
 * the metrics server closes last on `stop`, so scrapes see the drain. Ingest answers only after its group commit; stored events
 * are handed to the queue in bulk after the commit, and a failed hand-off is
 * left to the sweeper.
 */
export async function startSluice(
  services: Services,
  roles: Set<Role>,
  port: number,
  host: string,
): Promise<RunningSluice> {
  const { config, db, queue, log, metrics } = services;
  const health: HealthState = { draining: false };
  const app = createApp(services, health, roles);
  const handOffs = new Set<Promise<void>>();

  let committer: GroupCommitter | null = null;
  if (roles.has("ingest")) {
    committer = new GroupCommitter(
      (batch) => insertIngestBatch(db.pool, batch),
      (stored) => {
        const jobs = stored.map((e) => ({
          projectId: e.projectId,
          eventId: e.eventId,
          receivedAt: e.receivedAt.toISOString(),
        }));
        queue.enqueueEvents(jobs).catch((error) => {
          metrics.enqueueFailures.inc();
          log.warn(
            { err: error, events: jobs.length },
            "enqueue failed; the sweeper will enqueue these events",
          );
        });
      },
      (events, seconds) => {
        metrics.groupCommitEvents.observe(events);
        metrics.groupCommitDuration.observe(seconds);
      },
      {
        windowMs: config.groupCommit.windowMs,
        maxEvents: config.groupCommit.maxEvents,
        maxInFlight: Math.max(1, config.dbPoolSize - 2),
      },
    );
    registerIngestRoutes(app, {
      services,
      keys: createKeyCache(db.orm, { maxEntries: config.keyCacheEntries }),
      committer,
    });
  }
  if (roles.has("api")) app.route("/", createApiRoutes(services));

  const metricsServer = await startMetricsServer(metrics, config.metricsPort, host, async () => {
    metrics.queueDepth.set(await queue.depth().catch(() => -1));
  });
  const server: ServerType = await new Promise<ServerType>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`port ${port} on ${host} is already in use (set PORT or --port)`)
          : error,
      );
    const s = serve({ fetch: app.fetch, port, hostname: host }, () => {
      s.off("error", failed);
      resolve(s);
    });
    s.once("error", failed);
  }).catch(async (error) => {
    await metricsServer.close();
    throw error;
  });

  const loops: Loop[] = [];
  let worker = null;
  if (roles.has("worker")) {
    const deps = {
      db,
      log,
      symbolicate: createEventSymbolicator(db, services.blobs, config.sourceMapCacheBytes),
      recordRelease: createReleaseSeenRecorder(db),
      maxFailures: config.maxEventFailures,
      onFailed: (events: number) => metrics.eventsFailed.inc(events),
    };
    const batcher = new JobBatcher((jobs: EventProcessPayload[]) => processEvents(deps, jobs), {
      windowMs: WORKER_BATCH_WINDOW_MS,
      maxBatch: config.workerConcurrency,
    });
    worker = queue.startWorker(async (job) => {
      const started = performance.now();
      try {
        const result = await batcher.add(job);
        metrics.jobs.inc({ job: "event.process", result });
        if (result === "missing") log.warn({ job }, "event.process: no such event");
      } catch (error) {
        metrics.jobs.inc({ job: "event.process", result: "error" });
        throw error;
      } finally {
        metrics.jobDuration.observe({ job: "event.process" }, (performance.now() - started) / 1000);
      }
    }, config.workerConcurrency);
    loops.push(startSweeper(services), startMaintenance(services));
  }
  if (server instanceof HttpServer) {
    server.keepAliveTimeout = config.keepAliveTimeoutMs;
    server.headersTimeout = config.keepAliveTimeoutMs + 1_000;
  }
  const actualPort = (server.address() as AddressInfo).port;
  log.info(
    { port: actualPort, metricsPort: metricsServer.port, roles: [...roles] },
    "sluice is serving",
  );

  const drain = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      if (server instanceof HttpServer) server.closeIdleConnections();
    });
    await committer?.drain();
    await Promise.all([...handOffs]);
    await worker?.close();
    await Promise.all(loops.map((l) => l.stop()));
  };

  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    metricsUrl: `http://127.0.0.1:${metricsServer.port}`,
    async stop(options = { delayMs: 0, timeoutMs: config.shutdown.timeoutMs }) {
      health.draining = true;
      log.info(
        { delayMs: options.delayMs },
        "draining: readiness fails; still serving while the load balancer notices",
      );
      await sleep(options.delayMs);
      log.info("draining: no new connections; finishing in-flight requests, commits and jobs");
      const timeout = new AbortController();
      const finished = await Promise.race([
        drain().then(() => true),
        sleep(options.timeoutMs, false, { signal: timeout.signal }).catch(() => false),
      ]);
      timeout.abort();
      if (!finished) {
        log.warn({ timeoutMs: options.timeoutMs }, "shutdown timeout: closing what is left");
        if (server instanceof HttpServer) server.closeAllConnections();
      }
      await metricsServer.close();
      return finished;
    },
  };
}
