import type { NormalizedEvent } from "@sluice/protocol";
import type { GroupHash } from "./grouping-types.ts";
import { groupEvent, type ProjectGroupingRules } from "./hash-event.ts";
import { hashEventLegacy } from "./legacy/hash-event-legacy.ts";

/**
 * Grouping configs, Sentry's versioned model (src/sentry/grouping/
 * strategies/configurations.py): a change that would move existing events
 * to new issues is a new config id; an old config's code stays frozen so
 * that its hashes can still be computed.
 * - `sluice:2026-12`: Sentry's `newstyle@2023-01-11` hash for hash, with
 *   built-in and project stack trace rules and project fingerprint rules.
 * - `legacy`: Sluice's grouping before it (no project rules).
 */
export const GROUPING_CONFIGS = ["sluice:2026-12", "legacy"] as const;

export type GroupingConfigId = (typeof GROUPING_CONFIGS)[number];

/** The config new events are grouped by. */
export const CURRENT_GROUPING_CONFIG: GroupingConfigId = "sluice:2026-12";

/** The config before the current one: its hashes match existing issues during the transition. */
export const PREVIOUS_GROUPING_CONFIG: GroupingConfigId = "legacy";

/** Whether a string names a grouping config. */
export function isGroupingConfig(id: string): id is GroupingConfigId {
  return (GROUPING_CONFIGS as readonly string[]).includes(id);
}

/** An event's hashes under a config, and under the previous one for matching. */
export type EventGroupingHashes = {
  config: GroupingConfigId;
  /** Under `config`, best first: find the issue by these first, and give them to it. */
  hashes: GroupHash[];
  secondaryConfig: GroupingConfigId | null;
  /**
   * Under `secondaryConfig`, those not among `hashes`: only to find an
   * existing issue when no primary hash has one (Sentry's secondary
   * grouping), never given to a new issue.
   */
  secondaryHashes: GroupHash[];
  /** The issue title a matching fingerprint rule sets (`title="..."`), if any. */
  title: string | null;
};

/**
 * Groups an event under `config` (default: the current one) and, during a
 * transition, also under `secondaryConfig` (default: the previous one; null
 * for none), so that a worker matches existing issues by either and an
 * upgrade never splits them. The legacy config leaves out, for matching,
 * the hashes of its two over-merging paths (an empty fingerprint, and
 * type + value standing for a stack without in-app frames), so that the
 * issues those bugs merged stop growing. `rules` are the project's own
 * rules (ignored by `legacy`, which had none).
 */
export function computeEventGrouping(
  event: NormalizedEvent,
  options: {
    rules?: ProjectGroupingRules;
    config?: GroupingConfigId;
    secondaryConfig?: GroupingConfigId | null;
  } = {},
): EventGroupingHashes {
  const config = options.config ?? CURRENT_GROUPING_CONFIG;
  const secondaryConfig =
    options.secondaryConfig === undefined ? PREVIOUS_GROUPING_CONFIG : options.secondaryConfig;
  const primary = hashesUnder(config, event, options.rules, false);
  const secondary =
    secondaryConfig === null || secondaryConfig === config
      ? { hashes: [], title: null }
      : hashesUnder(secondaryConfig, event, options.rules, true);
  const seen = new Set(primary.hashes.map((h) => h.hash));
  return {
    config,
    hashes: primary.hashes,
    secondaryConfig: secondaryConfig === config ? null : secondaryConfig,
    secondaryHashes: secondary.hashes.filter((h) => !seen.has(h.hash)),
    title: primary.title,
  };
}

function hashesUnder(
  config: GroupingConfigId,
  event: NormalizedEvent,
  rules: ProjectGroupingRules | undefined,
  forMatching: boolean,
): { hashes: GroupHash[]; title: string | null } {
  if (config === "legacy") return { hashes: hashEventLegacy(event, forMatching), title: null };
  return groupEvent(event, rules);
}
