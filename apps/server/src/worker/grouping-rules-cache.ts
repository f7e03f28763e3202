import { type Database, findProjectGroupingSettings } from "@sluice/db";
import {
  type GroupingConfigId,
  PREVIOUS_GROUPING_CONFIG,
  type ProjectGroupingRules,
  parseGroupingRules,
} from "@sluice/grouping";
import { LRUCache } from "lru-cache";

/** How a project's events are grouped, as `computeEventGrouping` takes it. */
type ProjectGrouping = {
  rules: ProjectGroupingRules;
  /**
   * The previous config while the project's transition lasts (its hashes
   * only find issues grouped under it), else null: then its hashes are not
   * computed at all.
   */
  secondaryConfig: GroupingConfigId | null;
};

/** A project's grouping, looked up by project id. */
export type GroupingRulesLookup = (projectId: number) => Promise<ProjectGrouping>;

/**
 * How long a worker keeps a project's parsed rules, ms: a
 * `PUT /api/0/projects/{org}/{project}/` reaches every worker within this,
 * while a busy project costs one small query per 5 s, not one per batch.
 */
export const GROUPING_RULES_TTL_MS = 5_000;
/** Projects whose parsed rules a worker keeps at once (the least recently used go first). */
const MAX_PROJECTS = 1_000;
/**
 * Characters of rule text kept at once, across projects: 16 Mi characters,
 * so 1,000 projects at the 64 KiB limit of each field cannot hold hundreds of
 * MiB of compiled rules.
 */
const MAX_RULE_CHARS = 16 * 1024 * 1024;

type Entry = { rules: ProjectGroupingRules; chars: number; secondaryUntilMs: number | null };

/**
 * The grouping a worker applies to a project's events: its rules, read from
 * `project_grouping_rules` and parsed (`parseGroupingRules`), and whether its
 * grouping config transition (`projects.secondary_grouping_expiry`) still
 * lasts, so that the previous config's hashes are computed only then, as
 * Sentry computes its secondary hashes only while `is_in_transition`
 * (src/sentry/grouping/ingest/config.py: a secondary config, and
 * `sentry:secondary_grouping_expiry` not passed). Cached per project for
 * {@link GROUPING_RULES_TTL_MS} (at most 1,000 projects and 16 Mi characters
 * of rule text), the expiry compared with the clock at every lookup;
 * concurrent lookups of one project share one query. Text stored before a
 * parser change that no longer parses keeps the rules that do. A project
 * that no longer exists has no rules and no transition.
 */
export function createGroupingRulesLookup(db: Database): GroupingRulesLookup {
  const cache = new LRUCache<number, Entry>({
    max: MAX_PROJECTS,
    maxSize: MAX_RULE_CHARS,
    sizeCalculation: (entry) => Math.max(1, entry.chars),
    ttl: GROUPING_RULES_TTL_MS,
    fetchMethod: async (projectId) => {
      const settings = await findProjectGroupingSettings(db.orm, projectId);
      if (!settings) return { rules: {}, chars: 0, secondaryUntilMs: null };
      const { rules } = parseGroupingRules(settings);
      return {
        rules,
        chars: settings.fingerprintingRules.length + settings.groupingEnhancements.length,
        secondaryUntilMs: settings.secondaryGroupingExpiry?.getTime() ?? null,
      };
    },
  });
  return async (projectId) => {
    const entry = await cache.fetch(projectId);
    const until = entry?.secondaryUntilMs ?? null;
    return {
      rules: entry?.rules ?? {},
      secondaryConfig: until !== null && until >= Date.now() ? PREVIOUS_GROUPING_CONFIG : null,
    };
  };
}
