import { ping } from "@sluice/db";
import { Hono } from "hono";
import { routePath } from "hono/route";
import { methodLabel } from "../metrics.ts";
import type { Role } from "../roles.ts";
import type { Services } from "../services.ts";

export type HealthState = { draining: boolean };

/**
 * The HTTP app shared by every role: request metrics on every route,
 * `/healthz` (the process is alive), `/readyz` (it should get traffic: not
 * draining, and Postgres answers; Redis is reported but gates only a
 * worker-only process, because ingest keeps accepting without it).
 * `/metrics` answers 404 here: metrics have their own port
 * (`startMetricsServer`). Once draining, every answer carries
 * `Connection: close`, so clients and load balancers move to other nodes.
 */
export function createApp(services: Services, health: HealthState, roles: Set<Role>): Hono {
  const app = new Hono({ strict: false });
  const { metrics } = services;
  const redisGatesReadiness = !roles.has("ingest") && !roles.has("api");
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    if (health.draining) c.res.headers.set("Connection", "close");
    // Labels from closed sets: a registered route pattern (never the
    // request's own path) and one of the methods Sluice serves.
    const route = routePath(c) || "unmatched";
    const labels = { method: methodLabel(c.req.method), route };
    metrics.httpRequests.inc({ ...labels, status: c.res.status });
    metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
  });
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const checks = await readinessChecks(services);
    const ready = !health.draining && checks.postgres && (checks.queue || !redisGatesReadiness);
    return c.json(
      { status: ready ? "ready" : "not ready", draining: health.draining, ...checks },
      ready ? 200 : 503,
    );
  });
  app.notFound((c) => c.json({ detail: "not found" }, 404));
  return app;
}

const CHECK_TIMEOUT_MS = 2_000;

async function readinessChecks(services: Services) {
  const within = <T>(work: Promise<T>, fallback: T) =>
    Promise.race([
      work.catch(() => fallback),
      new Promise<T>((r) => setTimeout(() => r(fallback), CHECK_TIMEOUT_MS)),
    ]);
  const [postgres, queue] = await Promise.all([
    within(
      ping(services.db).then(() => true),
      false,
    ),
    within(services.queue.ping(), false),
  ]);
  return { postgres, queue };
}
