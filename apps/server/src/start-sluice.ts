import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { getRequestListener } from "@hono/node-server";
import { eventJobsDepth } from "@sluice/queue";
import type { Hono } from "hono";
import { buildInfo } from "./build-info.ts";
import { createApp, type HealthState } from "./http/create-app.ts";
import { type DirectDeps, type DirectRoutes, serveDirect } from "./http/direct-routes.ts";
import { type MetricsServer, startMetricsServer } from "./metrics.ts";
import { type NodeRegistration, startNodeRegistration } from "./node-registry.ts";
import { ROLES, type Role, type RoleModule, type StartedRole } from "./roles.ts";
import type { Services } from "./services.ts";

/**
 * A running Sluice process. `stop` drains it: readiness fails at once, it
 * keeps serving for `delayMs` (so the load balancer notices), then stops
 * accepting and waits up to `timeoutMs` for in-flight requests, pending
 * group commits and active jobs, then stops the background loops. Resolves
 * false when the timeout cut that short (unfinished jobs are re-run: they
 * are idempotent). The queue hand-off after a group commit is not waited
 * for: an event whose hand-off did not finish is enqueued by the sweeper.
 */
export type RunningSluice = {
  url: string;
  port: number;
  /** Base URL of the metrics server (`{metricsUrl}/metrics`), on its own port. */
  metricsUrl: string;
  stop(options?: { delayMs: number; timeoutMs: number }): Promise<boolean>;
};

/**
 * Each role's modules (its own folder's, then the capabilities it serves),
 * imported only when the process takes the role, so an ingest-only process
 * never loads the worker's code (grouping, source maps).
 */
const ROLE_MODULES: Record<Role, (() => Promise<RoleModule>)[]> = {
  // Ingest gets its quota check from the quotas capability, which it may not import (§2).
  ingest: [
    async () => {
      const [ingest, quotas] = await Promise.all([
        import("./ingest/ingest-module.ts"),
        import("./quotas/quotas-module.ts"),
      ]);
      return { start: (services) => ingest.start(services, quotas.createQuotaGate(services)) };
    },
  ],
  api: [() => import("./api/api-module.ts"), () => import("./web/web-module.ts")],
  worker: [() => import("./worker/worker-module.ts")],
  alerts: [() => import("./alerts/alerts-module.ts")],
};

/**
 * The composition root of `sluice serve`: starts the given roles (in `ROLES`
 * order) with the services built at start, mounts their routes on one app
 * (after the shared health routes) served on `port` (0: any free port), and `/metrics` on
 * `config.metricsPort` of the same host. `stop` drains in order: stop
 * accepting, each role's `drain` (ingest's group commits, then the worker's
 * active jobs), the roles' background loops, and the metrics server last,
 * so scrapes see the drain. Rejects, with every started role drained, when
 * a role fails to start or a port is taken.
 */
export async function startSluice(
  services: Services,
  roles: Set<Role>,
  port: number,
  host: string,
): Promise<RunningSluice> {
  const { config, queue, log, metrics } = services;
  const health: HealthState = { draining: false };
  const app = createApp(services, health, roles);
  const started: StartedRole[] = [];
  const direct: DirectRoutes[] = [];
  const stopRoles = async () => {
    for (const role of started) await role.drain();
    await Promise.all(started.flatMap((role) => role.loops ?? []).map((loop) => loop.stop()));
  };

  const { release, commit } = buildInfo();
  for (const role of roles)
    metrics.buildInfo.set({ release, commit: commit ?? "unknown", role }, 1);

  const { metricsServer, server, registration } = await (async () => {
    let metricsServer: MetricsServer | null = null;
    let registration: NodeRegistration | null = null;
    try {
      registration = await startNodeRegistration(services, roles);
      for (const role of ROLES) {
        if (!roles.has(role)) continue;
        for (const load of ROLE_MODULES[role]) {
          const running = await (await load()).start(services);
          started.push(running);
          running.mount?.(app);
          if (running.direct) direct.push(running.direct);
        }
      }
      metricsServer = await startMetricsServer(metrics, config.metricsPort, host, async () => {
        metrics.queueDepth.set(await eventJobsDepth(queue).catch(() => -1));
      });
      const server = await listen(app, direct, port, host, {
        keepAliveTimeoutMs: config.keepAliveTimeoutMs,
        direct: { metrics, log, draining: () => health.draining },
      });
      await registration.setReady(true);
      return { metricsServer, server, registration };
    } catch (error) {
      await registration?.stop();
      await stopRoles();
      await metricsServer?.close();
      throw error;
    }
  })();
  const actualPort = (server.address() as AddressInfo).port;
  log.info(
    { port: actualPort, metricsPort: metricsServer.port, roles: [...roles] },
    "sluice is serving",
  );

  const drain = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await stopRoles();
  };

  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    metricsUrl: `http://127.0.0.1:${metricsServer.port}`,
    async stop(options = { delayMs: 0, timeoutMs: config.shutdown.timeoutMs }) {
      health.draining = true;
      // Listed as not ready while it drains, and still a live node for the
      // version gate until its last request is done; it leaves at the end.
      await registration.setReady(false);
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
        server.closeAllConnections();
      }
      await registration.stop();
      await metricsServer.close();
      return finished;
    },
  };
}

/**
 * Serves `app` on `host:port`, with the roles' `direct` routes ahead of it,
 * keeping idle keep-alive connections for `keepAliveTimeoutMs`. Rejects with
 * a readable message when the port is taken.
 */
async function listen(
  app: Hono,
  direct: DirectRoutes[],
  port: number,
  host: string,
  options: { keepAliveTimeoutMs: number; direct: DirectDeps },
): Promise<Server> {
  const viaApp = getRequestListener(app.fetch, { hostname: host });
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    for (const routes of direct) {
      const route = routes(req.method ?? "", path);
      if (route) {
        const request = { incoming: req, path, query: q < 0 ? "" : url.slice(q + 1) };
        return void serveDirect(route, request, res, options.direct);
      }
    }
    void viaApp(req, res);
  });
  server.keepAliveTimeout = options.keepAliveTimeoutMs;
  server.headersTimeout = options.keepAliveTimeoutMs + 1_000;
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`port ${port} on ${host} is already in use (set PORT or --port)`)
          : error,
      );
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  return server;
}
