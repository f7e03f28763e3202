import { compareReleases, type FleetNode, type PayloadStorage } from "@sluice/db";
import type { BuildInfo } from "../build-info.ts";
import type { Logger } from "../logger.ts";

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

/** What ingest stores payloads as right now (`storage()`), and one check of the registry (`check()`). */
export type PayloadStorageGuard = { storage(): PayloadStorage; check(): Promise<void> };

/**
 * Keeps `SLUICE_PAYLOAD_STORAGE=zstd` (`configured`) from writing rows an
 * older node in the fleet cannot read: until a check finds every live node
 * (`readNodes`, the node registry) able to read format 2, whenever a later
 * check finds one that cannot, and while the registry cannot be read, ingest
 * writes `compressed` (format 1, read by every release since 0.2.0) instead,
 * and logs why. Any other setting is written as set. Ingest checks at start
 * and at every heartbeat; a node that starts between two checks can meet
 * one heartbeat of format 2 rows (README "Upgrading").
 */
export function createPayloadStorageGuard(
  configured: PayloadStorage,
  readNodes: () => Promise<FleetNode[]>,
  own: BuildInfo,
  log: Pick<Logger, "info" | "warn">,
): PayloadStorageGuard {
  if (configured !== "zstd") return { storage: () => configured, check: async () => {} };
  let current: PayloadStorage = "compressed";
  let heldBy: string | null = null;
  return {
    storage: () => current,
    check: async () => {
      let nodes: FleetNode[];
      try {
        nodes = await readNodes();
      } catch (error) {
        if (heldBy !== "registry")
          log.warn({ err: error }, "cannot read the node registry; storing payloads compressed");
        heldBy = "registry";
        current = "compressed";
        return;
      }
      const blocker = nodeUnableToReadZstd(nodes, own);
      if (!blocker) {
        if (current !== "zstd")
          log.info("every live node reads zstd payloads; storing them as zstd");
        heldBy = null;
        current = "zstd";
        return;
      }
      if (blocker.id !== heldBy) {
        log.warn(
          { node: blocker.id, host: blocker.host, release: blocker.release },
          `SLUICE_PAYLOAD_STORAGE=zstd: a live node runs a release before ${FIRST_RELEASE_READING_ZSTD}, which cannot read zstd payloads; storing them compressed until it leaves`,
        );
      }
      heldBy = blocker.id;
      current = "compressed";
    },
  };
}
