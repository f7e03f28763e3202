import { hostname } from "node:os";
import {
  neededSchemaVersion,
  parseSqlOffThread,
  pruneNodes,
  readMigrationFiles,
  recordUnregisteredNodes,
  removeNode,
  upsertNode,
} from "@sluice/db";
import { buildInfo } from "./build-info.ts";
import type { Role } from "./roles.ts";
import type { Services } from "./services.ts";

/** This node's row in `sluice_nodes`, kept fresh by a timer of its own. */
export type NodeRegistration = {
  /** Writes the row now with this readiness (false once draining). */
  setReady(ready: boolean): Promise<void>;
  /** Stops the heartbeat and deletes the row (the node drains). */
  stop(): Promise<void>;
};

/**
 * Registers this `sluice serve` process in `sluice_nodes` (migration 0011)
 * and refreshes its row every `config.fleet.heartbeatMs` on a timer of its
 * own, never on a request's path; each beat also records the connections of
 * releases without the registry (`recordUnregisteredNodes`) and deletes the
 * rows of dead nodes. A failed beat is logged and the next one tries again:
 * the registry never stops a node from serving.
 */
export async function startNodeRegistration(
  services: Services,
  roles: Set<Role>,
): Promise<NodeRegistration> {
  const { db, log, config, instanceId } = services;
  const { release, commit } = buildInfo();
  // Off this process: the parser's memory would stay for the node's life (sql-parser.ts).
  const files = readMigrationFiles();
  await parseSqlOffThread(files.map((f) => f.sql));
  const record = {
    id: instanceId,
    host: hostname(),
    release,
    commit,
    roles: [...roles],
    schemaVersion: neededSchemaVersion(files),
    ready: false,
    startedAt: new Date(),
  };
  let failing = false;
  const beat = async () => {
    try {
      await upsertNode(db.pool, record);
      await recordUnregisteredNodes(db.pool);
      await pruneNodes(db.pool, config.fleet.ageOutMs, config.fleet.unregisteredAgeOutMs);
      if (failing) log.info("node registry heartbeat recovered");
      failing = false;
    } catch (error) {
      if (!failing) log.warn({ err: error }, "node registry heartbeat failed; retrying");
      failing = true;
    }
  };
  await beat();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(beat);
  }, config.fleet.heartbeatMs);
  timer.unref();
  return {
    async setReady(ready) {
      record.ready = ready;
      if (stopped) return;
      running = running.then(beat);
      await running;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      await removeNode(db.pool, instanceId).catch((error) =>
        log.warn({ err: error }, "could not remove this node from the registry"),
      );
    },
  };
}
