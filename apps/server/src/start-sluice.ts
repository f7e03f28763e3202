import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { insertIngestBatch } from "@sluice/db";
import { createApiRoutes } from "./api/api-routes.ts";
import { createApp, type HealthState } from "./http/create-app.ts";
import { GroupCommitter } from "./ingest/group-committer.ts";
import { registerIngestRoutes } from "./ingest/ingest-routes.ts";
import { createKeyCache } from "./ingest/key-cache.ts";
import type { Role } from "./roles.ts";
import type { Services } from "./services.ts";
import { type Loop, startMaintenance, startSweeper } from "./worker/background-loops.ts";
import { processEvent } from "./worker/process-event.ts";

/** A running Sluice process: its URL and how to stop it cleanly. */
export type RunningSluice = { url: string; port: number; stop(): Promise<void> };

/**
 * Serves the given roles on `port` (0: any free port) with the services
 * built at start. Ingest answers only after its group commit; stored events
 * are handed to the queue in bulk after the commit, and a failed hand-off is
 * left to the sweeper. `stop` flips readiness, stops accepting, waits for
 * in-flight requests and pending commits, stops the worker and loops.
 */
export async function startSluice(
  services: Services,
  roles: Set<Role>,
  port: number,
  host: string,
): Promise<RunningSluice> {
  const { config, db, queue, log, metrics } = services;
  const health: HealthState = { draining: false };
  const app = createApp(services, health);

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
    registerIngestRoutes(app, { services, keys: createKeyCache(db.orm), committer });
  }
  if (roles.has("api")) app.route("/", createApiRoutes(services));

  const loops: Loop[] = [];
  let worker = null;
  if (roles.has("worker")) {
    worker = queue.startWorker(async (job) => {
      const started = performance.now();
      try {
        const result = await processEvent(db, log, job);
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

  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: host }, () => resolve(s));
  });
  const actualPort = (server.address() as AddressInfo).port;
  log.info({ port: actualPort, roles: [...roles] }, "sluice is serving");

  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    async stop() {
      health.draining = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeIdleConnections" in server) server.closeIdleConnections();
      });
      await committer?.drain();
      await worker?.close();
      await Promise.all(loops.map((l) => l.stop()));
    },
  };
}
