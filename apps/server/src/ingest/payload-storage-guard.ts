import { compareReleases, type FleetNode, type PayloadStorage } from "@sluice/db";
import type { BuildInfo } from "../build-info.ts";
import { liveNodes } from "../fleet-nodes.ts";
import type { Services } from "../services.ts";

/** The first release whose nodes read stored payload format 2 (`SLUICE_PAYLOAD_STORAGE=zstd`). */
const FIRST_RELEASE_READING_ZSTD = "0.6.0";

/**
 * The live node that cannot read `zstd` payloads, if any: one of a release
 * before {@link FIRST_RELEASE_READING_ZSTD} (a `-dev` build of 0.6.0 is
 * before it; an unregistered node is 0.3.0 or older), unless it runs this
 * very commit.
 */
export function nodeUnableToReadZstd(nodes: FleetNode[], own: BuildInfo): FleetNode | null {
  return (
    nodes.find(
      (node) =>
        !(own.commit !== null && node.commit === own.commit) &&
        compareReleases(node.release, FIRST_RELEASE_READING_ZSTD) < 0,
    ) ?? null
  );
}

/** What ingest stores payloads as right now (`storage()`), and the loop that keeps it true. */
export type PayloadStorageGuard = { storage(): PayloadStorage; check(): Promise<void> };

/**
 * Keeps `SLUICE_PAYLOAD_STORAGE=zstd` from writing rows an older node in
 * the fleet cannot read: until a check of the node registry finds every live
 * node able to read format 2, and whenever a later check finds one that
 * cannot (a roll back), ingest writes `compressed` (format 1, read by every
 * release since 0.2.0) instead, and logs which node holds it back. Any other
 * setting is written as set. `check` reads the registry (`liveNodes`); a
 * failed read keeps the last answer. A node that starts between two checks
 * can meet up to one heartbeat of format 2 rows (README "Upgrading").
 */
export function createPayloadStorageGuard(
  services: Pick<Services, "db" | "config" | "log">,
  own: BuildInfo,
): PayloadStorageGuard {
  const configured = services.config.payloadStorage;
  if (configured !== "zstd") return { storage: () => configured, check: async () => {} };
  let current: PayloadStorage = "compressed";
  let heldBy: string | null = null;
  return {
    storage: () => current,
    check: async () => {
      let nodes: FleetNode[];
      try {
        nodes = await liveNodes(services);
      } catch (error) {
        services.log.warn(
          { err: error },
          "cannot read the node registry; payload storage unchanged",
        );
        return;
      }
      const blocker = nodeUnableToReadZstd(nodes, own);
      const next: PayloadStorage = blocker ? "compressed" : "zstd";
      const blockerId = blocker ? blocker.id : null;
      if (next === "zstd" && current !== "zstd") {
        services.log.info("every live node reads zstd payloads; storing payloads as zstd");
      } else if (blocker && blockerId !== heldBy) {
        services.log.warn(
          { node: blocker.id, host: blocker.host, release: blocker.release },
          `SLUICE_PAYLOAD_STORAGE=zstd: a live node runs a release before ${FIRST_RELEASE_READING_ZSTD}, which cannot read zstd payloads; storing them compressed until it leaves`,
        );
      }
      heldBy = blockerId;
      current = next;
    },
  };
}
