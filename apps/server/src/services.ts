import { hostname } from "node:os";
import { join } from "node:path";
import {
  applyMigrations,
  compareReleases,
  createDatabase,
  type Database,
  ensureEventPartitions,
  type GateRefusal,
  migrationsDir,
  readDeprecationsFile,
  readSchemaFloor,
  waitForSchema,
} from "@sluice/db";
import { createBullmqQueue, createInProcessQueue, type JobQueue } from "@sluice/queue";
import { type BlobStore, createDirectoryBlobStore, createS3BlobStore } from "@sluice/storage";
import { buildInfo } from "./build-info.ts";
import type { Config } from "./config.ts";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./embedded-postgres.ts";
import type { Logger } from "./logger.ts";
import { createMetrics, type Metrics } from "./metrics.ts";

/** What every role uses, built once at start and passed down. */
export type Services = {
  config: Config;
  log: Logger;
  metrics: Metrics;
  db: Database;
  queue: JobQueue;
  blobs: BlobStore;
  /** This process, as named in leases and the migration lock. */
  instanceId: string;
  /** True when Sluice started its own embedded Postgres. */
  embedded: boolean;
  /** Migrations the version gate left pending at start, with the nodes that block them. */
  gateRefusals: GateRefusal[];
  close(): Promise<void>;
};

/**
 * What a process does with the schema at start: apply pending migrations
 * under the migration lock (`migrate`, every node by default), wait until
 * another node or a Job has applied them (`wait`, `--no-migrate`), or
 * nothing (`none`, for commands that only inspect).
 */
export type SchemaAtStart = "migrate" | "wait" | "none";

/**
 * Connects to Postgres (starting the embedded one when `DATABASE_URL` is
 * unset), brings the schema up as `schema` says, creates the coming days'
 * event partitions, and opens the queue: BullMQ when `REDIS_URL` is set,
 * else the in-process runner.
 */
export async function startServices(
  config: Config,
  log: Logger,
  options: { schema: SchemaAtStart },
): Promise<Services> {
  const instanceId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  let embeddedDb: EmbeddedDatabase | null = null;
  let url = config.databaseUrl;
  if (!url) {
    embeddedDb = await startEmbeddedPostgres(config.dataDir, log);
    url = embeddedDb.url;
  }
  const db = createDatabase(
    url,
    {
      max: config.dbPoolSize,
      // Not "sluice" (what releases without the registry send): the version
      // gate counts those connections as unregistered old nodes.
      applicationName: `sluice/${buildInfo().release}`.slice(0, 63),
      connectionTimeoutMs: config.dbConnectTimeoutMs,
    },
    (error) => log.warn({ err: error }, "idle Postgres connection failed"),
  );
  let gateRefusals: GateRefusal[] = [];
  try {
    if (options.schema !== "none") {
      await refuseIfTooOld(db);
      const state =
        options.schema === "migrate"
          ? await applyMigrations(db.pool, {
              holder: instanceId,
              leaseMs: config.migration.leaseMs,
              lockTimeoutMs: config.migration.lockTimeoutMs,
              statementTimeoutMs: config.migration.statementTimeoutMs,
              lockRetries: 20,
              log,
              gate: {
                deprecations: readDeprecationsFile(migrationsDir),
                release: buildInfo().release,
                ageOutMs: config.fleet.ageOutMs,
                unregisteredAgeOutMs: config.fleet.unregisteredAgeOutMs,
              },
            })
          : await waitForSchema(db.pool, {
              timeoutMs: config.migration.schemaWaitMs,
              pollMs: 1_000,
              log,
            });
      if ("refused" in state) gateRefusals = state.refused as GateRefusal[];
      if (state.ahead.length > 0) {
        log.info({ ahead: state.ahead.map((m) => m.name) }, "the schema is ahead of this release");
      }
      await ensureEventPartitions(db.pool, new Date(), 1, 3).catch((error) =>
        log.warn(
          { err: error },
          "event partitions not created; events_default takes the rows meanwhile",
        ),
      );
    }
  } catch (error) {
    await closePool(db);
    await embeddedDb?.stop();
    throw error;
  }
  const onQueueError = (error: Error, context: string) =>
    log.warn({ err: error, context }, "queue error");
  const blobs =
    config.blobStore.kind === "s3"
      ? createS3BlobStore(config.blobStore)
      : createDirectoryBlobStore(join(config.dataDir, "blobs"));
  const queue = config.redisUrl
    ? createBullmqQueue({
        redisUrl: config.redisUrl,
        prefix: config.queuePrefix,
        onError: onQueueError,
      })
    : createInProcessQueue(onQueueError);
  return {
    config,
    log,
    metrics: createMetrics(),
    db,
    queue,
    blobs,
    instanceId,
    embedded: embeddedDb !== null,
    gateRefusals,
    // The order matters: the queue, then every Postgres connection, then the
    // embedded Postgres, which would otherwise end live connections (errors
    // in the log at every stop).
    async close() {
      await queue.close();
      await closePool(db);
      blobs.close();
      await embeddedDb?.stop();
    },
  };
}

/** This node's release is older than the oldest the schema still supports. */
class ReleaseTooOldError extends Error {}

/**
 * Refuses to start a node whose release is older than the oldest release
 * the schema still supports (`sluice_schema_floor`, written by the version
 * gate before it drops what older releases read), instead of letting it
 * fail on its first query.
 */
async function refuseIfTooOld(db: Database): Promise<void> {
  const floor = await readSchemaFloor(db.pool, compareReleases);
  const { release } = buildInfo();
  if (floor && compareReleases(release, floor.oldestRelease) < 0) {
    throw new ReleaseTooOldError(
      `this node runs release ${release}, but the schema supports release ${floor.oldestRelease} and later only (migration ${floor.migration}: ${floor.reason}); deploy ${floor.oldestRelease} or newer`,
    );
  }
}

/** How long `closePool` waits for connections to finish closing (ms). */
const POOL_CLOSE_TIMEOUT_MS = 5_000;

/**
 * Ends the pool and waits until each of its connections has closed its
 * socket: `pg.Pool.end()` resolves once it has asked them to, before they
 * have (pg-pool `_remove`), which is too early to stop the server.
 */
async function closePool(db: Database): Promise<void> {
  const open = db.pool.totalCount;
  let removed = 0;
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) resolve();
    db.pool.on("remove", () => {
      if (++removed >= open) resolve();
    });
    timer = setTimeout(resolve, POOL_CLOSE_TIMEOUT_MS);
  });
  await db.close();
  await closed;
  clearTimeout(timer);
}
