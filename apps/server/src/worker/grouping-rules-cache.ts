import { type Database, findProjectGroupingRules } from "@sluice/db";
import { type ProjectGroupingRules, parseGroupingRules } from "@sluice/grouping";
import { LRUCache } from "lru-cache";

/** A project's parsed grouping rules, as `computeEventGrouping` takes them. */
export type GroupingRulesLookup = (projectId: number) => Promise<ProjectGroupingRules>;

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

/**
 * The project grouping rules a worker applies, read from
 * `project_grouping_rules` and parsed (`parseGroupingRules`), cached per
 * project for {@link GROUPING_RULES_TTL_MS} (at most 1,000 projects and 16 Mi
 * characters of rule text); concurrent lookups of one project share one
 * query. Text stored before a parser change that no longer parses keeps the
 * rules that do.
 */
export function createGroupingRulesLookup(db: Database): GroupingRulesLookup {
  const cache = new LRUCache<number, { rules: ProjectGroupingRules; chars: number }>({
    max: MAX_PROJECTS,
    maxSize: MAX_RULE_CHARS,
    sizeCalculation: (entry) => Math.max(1, entry.chars),
    ttl: GROUPING_RULES_TTL_MS,
    fetchMethod: async (projectId) => {
      const text = await findProjectGroupingRules(db.orm, projectId);
      const { rules } = parseGroupingRules(text);
      return { rules, chars: text.fingerprintingRules.length + text.groupingEnhancements.length };
    },
  });
  return async (projectId) => {
    const entry = await cache.fetch(projectId);
    return entry?.rules ?? {};
  };
}
