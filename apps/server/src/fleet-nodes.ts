import { type FleetNode, listLiveNodes } from "@sluice/db";
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
