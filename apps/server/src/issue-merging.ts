import {
  type Database,
  findIssuesInScope,
  type Issue,
  type MergeResult,
  mergeIssues,
  type NewIssue,
  type UnmergeRefusal,
  type UnmergeResult,
  unmergeHashes,
  withTransaction,
} from "@sluice/db";
import { describeIssue } from "@sluice/grouping";
import { normalizeEvent } from "@sluice/protocol";

/**
 * Merge and unmerge as the API (`PUT …/issues/?id=…` with `{"merge": 1}`,
 * `PUT …/issues/{id}/hashes/?id=…`) and the issue pages both run them:
 * one transaction each (packages/db issue-merge.ts), run again on a
 * deadlock or serialization failure.
 */

/** SQLSTATEs a merge or unmerge is simply run again for: deadlock, serialization failure. */
const RETRY_CODES = new Set(["40P01", "40001"]);
const ATTEMPTS = 3;

async function retrying<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (!RETRY_CODES.has(code) || attempt >= ATTEMPTS) throw error;
    }
  }
}

/**
 * Merges the live issues among `ids` of the organization (and of
 * `projectIds`, when given; other ids are ignored, so another tenant's issue
 * is never touched) into one, the parent being Sentry's pick (`mergeIssues`).
 * Returns the merge, null when fewer than two such issues are live, or
 * `"cross-project"` when they are in several projects (Sentry refuses:
 * "Merging across multiple projects is not supported").
 */
export async function mergeIssuesInScope(
  db: Database,
  scope: { organizationId: number; projectIds: number[] | null },
  ids: number[],
): Promise<MergeResult | null | "cross-project"> {
  const issues = await findIssuesInScope(db.orm, scope, ids);
  if (issues.length < 2) return null;
  const projectId = issues[0]?.projectId as number;
  if (issues.some((i) => i.projectId !== projectId)) return "cross-project";
  return retrying(() =>
    withTransaction(db, ({ client }) =>
      mergeIssues(
        client,
        projectId,
        issues.map((i) => i.id),
      ),
    ),
  );
}

/**
 * Moves `hashes` of `issue` out to one new issue with their events
 * (`unmergeHashes`, Sentry's unmerge), the new issue described from its
 * newest event as the worker describes issues. Returns the new issue, or
 * why nothing changed.
 */
export async function unmergeIssueHashes(
  db: Database,
  issue: Issue,
  hashes: string[],
): Promise<UnmergeResult | UnmergeRefusal> {
  return retrying(() =>
    withTransaction(db, ({ client }) =>
      unmergeHashes(client, issue.projectId, issue.id, hashes, (payload, receivedAt) =>
        newIssueFrom(issue, payload, receivedAt),
      ),
    ),
  );
}

/**
 * The new issue of an unmerge, described from its newest event as the
 * worker describes issues; a copy of the old issue's description when that
 * event is missing or unreadable.
 */
function newIssueFrom(
  issue: Issue,
  payload: Record<string, unknown> | null,
  receivedAt: Date | null,
): NewIssue {
  const copy: NewIssue = {
    projectId: issue.projectId,
    type: issue.type,
    title: issue.title,
    culprit: issue.culprit,
    level: issue.level,
    platform: issue.platform,
    logger: issue.logger,
    metadata: issue.metadata,
    seenAt: issue.lastSeen,
    release: issue.lastRelease,
  };
  if (!payload || !receivedAt) return copy;
  try {
    const event = normalizeEvent(payload, {
      eventId: "0".repeat(32),
      timestamp: receivedAt,
      receivedAt,
    });
    const described = describeIssue(event);
    return {
      ...copy,
      type: described.type,
      title: described.title,
      culprit: described.culprit,
      level: event.level,
      platform: event.platform,
      logger: event.logger,
      metadata: described.metadata,
      seenAt: event.timestamp,
      release: event.release,
    };
  } catch {
    return copy;
  }
}
