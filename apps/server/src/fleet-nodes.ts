import {
  appliedSchemaVersion,
  compareReleases,
  type FleetNode,
  listLiveNodes,
  readSchemaFloor,
} from "@sluice/db";
import type { Services } from "./services.ts";

/**
 * One live node as `sluice fleet --json` and `GET /api/0/internal/fleet/`
 * show it (camelCase, ISO times, as Sentry's API writes its fields).
 * `registered: false` rows stand for connections of releases without the
 * registry (0.3.0 and older), one per client host.
 */
export type SerializedNode = {
  id: string;
  host: string;
  release: string;
  commit: string | null;
  roles: string[];
  schemaVersion: number;
  registered: boolean;
  ready: boolean;
  startedAt: string;
  lastHeartbeat: string;
};

export function serializeNode(node: FleetNode): SerializedNode {
  return {
    id: node.id,
    host: node.host,
    release: node.release,
    commit: node.commit,
    roles: node.roles,
    schemaVersion: node.schemaVersion,
    registered: node.registered,
    ready: node.ready,
    startedAt: node.startedAt.toISOString(),
    lastHeartbeat: node.heartbeatAt.toISOString(),
  };
}

/** The live nodes, with the age-outs of this node's settings. */
export function liveNodes(services: Pick<Services, "db" | "config">): Promise<FleetNode[]> {
  const { fleet } = services.config;
  return listLiveNodes(services.db.pool, fleet.ageOutMs, fleet.unregisteredAgeOutMs);
}

/** What the fleet page shows: the live nodes and the schema they share. */
export type FleetStatus = {
  nodes: FleetNode[];
  /** The highest migration applied to the database. */
  schemaVersion: number;
  /** The oldest release the schema still supports (`sluice_schema_floor`); null: every release. */
  floor: { oldestRelease: string; migration: number; reason: string } | null;
};

/** The live nodes with the database's schema version and floor (`/manage/fleet/`). */
export async function fleetStatus(services: Pick<Services, "db" | "config">): Promise<FleetStatus> {
  const [nodes, schemaVersion, floor] = await Promise.all([
    liveNodes(services),
    appliedSchemaVersion(services.db.pool),
    readSchemaFloor(services.db.pool, compareReleases),
  ]);
  return { nodes, schemaVersion, floor };
}
