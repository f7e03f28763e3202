import {
  addIssueUsers,
  claimIssueHashes,
  countIssueEvents,
  countIssueTagValues,
  createIssue,
  type Database,
  type EventKey,
  type EventToProcess,
  eventKeyString,
  findIssuesByHashes,
  type HashClaim,
  type IssueCount,
  type IssueTagCount,
  lockIssues,
  lockUnprocessedEvents,
  markEventsProcessed,
  type PayloadStorage,
  readEvents,
  recordEventFailures,
  type Transaction,
  withTransaction,
} from "@sluice/db";
import { computeEventGrouping, describeIssue } from "@sluice/grouping";
import {
  type EventUser,
  indexedEventTags,
  type NormalizedEvent,
  normalizeEvent,
} from "@sluice/protocol";
import type { EventProcessPayload } from "@sluice/queue";
import { type Logger, serializeError } from "../logger.ts";
import { evaluateAlerts } from "./alert-evaluation.ts";
import type { EventSymbolicator } from "./event-symbolicator.ts";
import type { GroupingRulesLookup } from "./grouping-rules-cache.ts";
import type { ReleaseSeenRecorder } from "./release-seen.ts";

/** What became of a job; `failed`: the event is marked failed (now or before), not retried. */
export type ProcessResult = "grouped" | "no-issue" | "already-processed" | "missing" | "failed";

/** What processing needs besides the jobs. */
export type ProcessDeps = {
  db: Database;
  log: Logger;
  symbolicate: EventSymbolicator;
  recordRelease: ReleaseSeenRecorder;
  /** The project's own grouping rules and whether its grouping config transition lasts. */
  groupingRules: GroupingRulesLookup;
  /** Failures after which an event is marked failed (SLUICE_MAX_EVENT_FAILURES; default 5). */
  maxFailures?: number;
  /** Called with how many events one batch marked failed (the `eventsFailed` metric). */
  onFailed?: (events: number) => void;
};

const DEFAULT_MAX_FAILURES = 5;

/** The stored payload cannot be decompressed or parsed: no retry can fix it. */
class UndecodablePayload extends Error {
  override name = "UndecodablePayload";
}

/** The payload decodes but cannot be normalized into an event: no retry can fix it. */
class UnnormalizableEvent extends Error {
  override name = "UnnormalizableEvent";
}

/**
 * Another transaction created an issue for these hashes first, or a merge or
 * unmerge moved them since they were read; run again to follow them.
 */
class LostIssueRace extends Error {}

/** SQLSTATEs a batch is simply run again for: deadlock, serialization failure. */
const RETRY_CODES = new Set(["40P01", "40001"]);
const RETRIES = 5;
/** The grouping transaction commits without waiting for the WAL flush (see its call). */
const GROUPING_TRANSACTION = { synchronousCommit: false } as const;

/** An event read, normalized, symbolicated and hashed, ready to group. */
type Prepared = {
  key: EventKey;
  event: NormalizedEvent;
  /** Hashes under the current grouping config, best first: they find the issue and go to it. */
  hashes: { hash: string; variant: string }[];
  /**
   * Hashes under the previous config, only to find an issue that events
   * grouped before an upgrade made, so that an upgrade never splits issues.
   */
  secondaryHashes: { hash: string; variant: string }[];
  /** The issue title a project fingerprint rule sets (`title="..."`), else null. */
  title: string | null;
  userKey: string | null;
  /** The symbolicated payload to store, when symbolication changed the event. */
  payload: Record<string, unknown> | null;
  /** How the row keeps its payload (the new one is written the same way). */
  storedAs: PayloadStorage;
};

/** One job's outcome: its result, or the error that failed it alone. */
export type JobOutcome = { ok: true; result: ProcessResult } | { ok: false; error: unknown };

/**
 * The `event.process` job for a batch of events. First, without locks:
 * loads the stored events in one query, normalizes each, symbolicates its
 * JavaScript frames through uploaded source maps (so that grouping sees
 * original files and lines), records its release as seen, and computes its
 * group hashes; an event that fails here fails alone. Then one transaction
 * for the batch: locks the events still unprocessed (the others are done
 * already), finds the issues owning their hashes, creates an issue per new
 * group, gives issues their new hashes, records users, counts every issue
 * once (times seen, first and last seen and release, new users), stores
 * symbolicated payloads and marks the events processed. A few round trips
 * per batch, not per event, and a hot issue is written once per batch.
 * Running it again changes nothing for processed events. Throws when the
 * transaction fails (the queue retries the jobs, the batcher one by one);
 * a concurrent batch that created the same issue first, or a deadlock,
 * runs the batch again.
 *
 * Poison events: each failure of an event alone (in preparing it, or in
 * grouping it as a batch of one) is counted in `event_failures`; an
 * undecodable payload or a normalize error marks the event failed at once,
 * any other error after `maxFailures`. A failed event's job resolves as
 * `failed` (no more retries) and the sweeper skips it. Failures of the
 * infrastructure (Postgres or the blob store away) are not counted.
 */
export async function processEvents(
  deps: ProcessDeps,
  jobs: EventProcessPayload[],
): Promise<JobOutcome[]> {
  const keys = jobs.map((job) => ({
    projectId: job.projectId,
    eventId: job.eventId,
    receivedAt: new Date(job.receivedAt),
  }));
  const stored = new Map((await readEvents(deps.db.pool, keys)).map((e) => [eventKeyString(e), e]));
  const outcomes = new Map<string, JobOutcome>();
  const prepared: Prepared[] = [];
  const failures: Failure[] = [];
  const seen = new Set<string>();
  for (const key of keys) {
    const id = eventKeyString(key);
    // The same event twice in one batch (a retry beside the original) is grouped once.
    if (seen.has(id)) continue;
    seen.add(id);
    const row = stored.get(id);
    if (!row) outcomes.set(id, { ok: true, result: "missing" });
    else if (row.processedAt) outcomes.set(id, { ok: true, result: "already-processed" });
    else if (row.failedAt) outcomes.set(id, { ok: true, result: "failed" });
    else if (row.decodeError !== null) {
      failures.push({ key: row, error: new UndecodablePayload(row.decodeError), permanent: true });
    } else {
      try {
        prepared.push(await prepare(deps, row));
      } catch (error) {
        failures.push({ key: row, error, permanent: error instanceof UnnormalizableEvent });
      }
    }
  }
  if (prepared.length > 0) {
    for (let attempt = 1; ; attempt++) {
      try {
        // Safe without waiting for the WAL flush: this transaction is atomic and
        // only derives state. If a crash loses it, the events are still
        // unprocessed and the sweeper runs them again; the ingest commit behind
        // every 200 stays synchronous. Waiting would hold hot issues' row locks
        // through an fsync.
        const results = await withTransaction(
          deps.db,
          ({ client }) => group(client, prepared),
          GROUPING_TRANSACTION,
        );
        for (const [id, result] of results) outcomes.set(id, { ok: true, result });
        break;
      } catch (error) {
        const code = (error as { code?: string }).code ?? "";
        const retry = error instanceof LostIssueRace || RETRY_CODES.has(code);
        if (retry && attempt < RETRIES) {
          deps.log.debug(
            { events: prepared.length, attempt, code },
            "grouping raced; running again",
          );
          continue;
        }
        // A batch fails as a whole; alone, the event is the one to blame.
        const [only] = prepared;
        if (prepared.length > 1 || !only || isInfrastructureError(error)) throw error;
        failures.push({ key: only.key, error, permanent: false });
        break;
      }
    }
  }
  await recordFailures(deps, failures, outcomes);
  return keys.map(
    (key) => outcomes.get(eventKeyString(key)) ?? { ok: true, result: "already-processed" },
  );
}

type Failure = { key: EventKey; error: unknown; permanent: boolean };

/**
 * Counts the batch's failures (infrastructure errors aside) and sets each
 * failing event's outcome: `failed` once it is marked failed, else its
 * error (the queue retries it). When the count itself cannot be written,
 * every one is left to a retry.
 */
async function recordFailures(
  deps: ProcessDeps,
  failures: Failure[],
  outcomes: Map<string, JobOutcome>,
): Promise<void> {
  for (const f of failures) outcomes.set(eventKeyString(f.key), { ok: false, error: f.error });
  const counted = failures.filter((f) => f.permanent || !isInfrastructureError(f.error));
  if (counted.length === 0) return;
  const maxFailures = deps.maxFailures ?? DEFAULT_MAX_FAILURES;
  let recorded: Awaited<ReturnType<typeof recordEventFailures>>;
  try {
    recorded = await recordEventFailures(
      deps.db.pool,
      counted.map((f) => ({ ...f.key, error: errorText(f.error), permanent: f.permanent })),
      maxFailures,
    );
  } catch (error) {
    deps.log.warn({ err: error, events: counted.length }, "event failures not recorded");
    return;
  }
  for (const f of counted) {
    const id = eventKeyString(f.key);
    const failuresSoFar = recorded.counts.get(id) ?? 0;
    if (recorded.newlyFailed.has(id)) {
      outcomes.set(id, { ok: true, result: "failed" });
      deps.log.warn(
        {
          err: f.error,
          projectId: f.key.projectId,
          eventId: f.key.eventId,
          failures: failuresSoFar,
        },
        "event.process: event marked failed; it is not retried (sluice events failed lists it)",
      );
    }
  }
  if (recorded.newlyFailed.size > 0) deps.onFailed?.(recorded.newlyFailed.size);
}

/** An error as `event_failures.last_error` keeps it: type and message, no data. */
function errorText(error: unknown): string {
  const { type, message } = serializeError(error);
  return message ? `${type}: ${message}` : String(type);
}

/** SQLSTATE classes of a database that is away or overloaded, not of a bad event. */
const INFRASTRUCTURE_SQLSTATE = /^(08|53|57|58|40001|40P01|55P03)/;
const INFRASTRUCTURE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
]);

/** Whether an error says a dependency failed (retry without blaming the event). */
function isInfrastructureError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === "string" &&
    (INFRASTRUCTURE_SQLSTATE.test(code) || INFRASTRUCTURE_CODES.has(code))
  )
    return true;
  if (error.name === "TimeoutError" || error.name === "AbortError") return true;
  return /timeout exceeded when trying to connect|Connection terminated|Cannot use a pool after calling end/i.test(
    error.message,
  );
}

/** One event alone: `processEvents` of one job, its error thrown. */
export async function processEvent(
  deps: ProcessDeps,
  job: EventProcessPayload,
): Promise<ProcessResult> {
  const [outcome] = await processEvents(deps, [job]);
  if (!outcome) throw new Error("no outcome");
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}

async function prepare(deps: ProcessDeps, row: EventToProcess): Promise<Prepared> {
  let event: NormalizedEvent;
  try {
    event = normalizeEvent(row.payload, {
      eventId: row.eventId,
      timestamp: row.timestamp,
      receivedAt: row.receivedAt,
    });
  } catch (error) {
    throw new UnnormalizableEvent((error as Error)?.message ?? "normalize failed", {
      cause: error,
    });
  }
  let payload: Record<string, unknown> | null = null;
  if (event.type !== "transaction") {
    const symbolicated = await deps.symbolicate(event, row.projectId);
    if (symbolicated && (symbolicated.mappedFrames > 0 || symbolicated.errors.length > 0)) {
      event.errors = [...event.errors, ...symbolicated.errors];
      payload = { ...event.raw, errors: event.errors };
    }
  }
  if (event.release) {
    await deps.recordRelease(row.projectId, event.release, event.environment, event.timestamp);
  }
  const grouping =
    event.type === "transaction"
      ? null
      : computeEventGrouping(event, await deps.groupingRules(row.projectId));
  return {
    key: { projectId: row.projectId, eventId: row.eventId, receivedAt: row.receivedAt },
    event,
    hashes: grouping?.hashes ?? [],
    secondaryHashes: grouping?.secondaryHashes ?? [],
    title: grouping?.title ?? null,
    userKey: userKeyOf(event.user),
    payload,
    storedAs: row.storedAs,
  };
}

async function group(
  client: Transaction["client"],
  prepared: Prepared[],
): Promise<Map<string, ProcessResult>> {
  const results = new Map<string, ProcessResult>();
  const unprocessed = await lockUnprocessedEvents(
    client,
    prepared.map((p) => p.key),
  );
  const todo = prepared.filter((p) => {
    const id = eventKeyString(p.key);
    if (!unprocessed.has(id)) results.set(id, "already-processed");
    return unprocessed.has(id);
  });

  const hashKey = (projectId: number, hash: string) => `${projectId}/${hash}`;
  const pairs = todo.flatMap((p) =>
    [...p.hashes, ...p.secondaryHashes].map((h) => ({ projectId: p.key.projectId, hash: h.hash })),
  );
  // Lock the owning issues (in id order, before any row refers to them), then
  // read the owners again: only a transaction holding an issue's lock moves
  // its hashes (merge, unmerge), so the second read is stable for locked
  // issues. An owner that is not locked (an issue made or given hashes
  // meanwhile) or a merged one means the batch runs again (see lockIssues).
  let owners = await findIssuesByHashes(client, pairs);
  const locked = new Set(owners.values());
  if (locked.size > 0) {
    const merged = await lockIssues(client, [...locked]);
    owners = await findIssuesByHashes(client, pairs);
    if (merged.size > 0 || [...owners.values()].some((id) => !locked.has(id))) {
      throw new LostIssueRace();
    }
  }
  const issueOf = new Map<Prepared, number>();
  const createdIssues = new Set<number>();
  const claims: HashClaim[] = [];
  for (const p of todo) {
    if (p.event.type === "transaction") continue;
    let issueId = owner(p);
    if (issueId === null) {
      // A new group: one issue for every event of the batch that shares it.
      const created = await createIssue(client, newIssueOf(p));
      createdIssues.add(created);
      const wanted = p.hashes.map((h) => ({ ...h, projectId: p.key.projectId, issueId: created }));
      const took = await claimIssueHashes(client, wanted);
      if (took.size === 0) throw new LostIssueRace();
      for (const h of p.hashes) {
        if (took.has(hashKey(p.key.projectId, h.hash))) {
          owners.set(hashKey(p.key.projectId, h.hash), created);
        }
      }
      issueId = created;
    } else {
      for (const h of p.hashes) {
        if (!owners.has(hashKey(p.key.projectId, h.hash))) {
          claims.push({ ...h, projectId: p.key.projectId, issueId });
          owners.set(hashKey(p.key.projectId, h.hash), issueId);
        }
      }
    }
    issueOf.set(p, issueId);
  }
  await claimIssueHashes(client, claims);

  const newUsers = await addIssueUsers(
    client,
    [...issueOf].flatMap(([p, issueId]) => (p.userKey ? [{ issueId, userKey: p.userKey }] : [])),
  );
  const counts = new Map<number, IssueCount & { releaseAt: number }>();
  const tagCounts = new Map<string, IssueTagCount>();
  for (const [p, issueId] of issueOf) {
    const at = p.event.timestamp;
    const count = counts.get(issueId) ?? {
      issueId,
      events: 0,
      firstSeen: at,
      lastSeen: at,
      newUsers: newUsers.get(issueId) ?? 0,
      lastRelease: null,
      releases: [],
      releaseAt: Number.NEGATIVE_INFINITY,
    };
    count.events += 1;
    if (!count.releases?.includes(p.event.release)) count.releases?.push(p.event.release);
    for (const [key, value] of indexedEventTags(p.event)) {
      const id = `${issueId}\u0000${key}\u0000${value}`;
      const tag = tagCounts.get(id) ?? {
        issueId,
        projectId: p.key.projectId,
        key,
        value,
        events: 0,
        firstSeen: at,
        lastSeen: at,
      };
      tag.events += 1;
      if (at < tag.firstSeen) tag.firstSeen = at;
      if (at > tag.lastSeen) tag.lastSeen = at;
      tagCounts.set(id, tag);
    }
    if (at < count.firstSeen) count.firstSeen = at;
    if (at > count.lastSeen) count.lastSeen = at;
    if (p.event.release && at.getTime() >= count.releaseAt) {
      count.lastRelease = p.event.release;
      count.releaseAt = at.getTime();
    }
    counts.set(issueId, count);
  }
  const regressed = await countIssueEvents(client, [...counts.values()]);
  // After the issues are locked (countIssueEvents), so tag rows queue behind them.
  await countIssueTagValues(client, [...tagCounts.values()]);
  // Issue alerts, in this transaction, from what grouping knows (docs/architecture.md §3.12).
  await evaluateAlerts(client, {
    created: createdIssues,
    regressed,
    events: [...issueOf].map(([p, issueId]) => ({
      issueId,
      projectId: p.key.projectId,
      event: p.event,
      receivedAt: p.key.receivedAt,
      userKey: p.userKey,
    })),
  });
  await markEventsProcessed(
    client,
    todo.map((p) => ({
      ...p.key,
      issueId: issueOf.get(p) ?? null,
      payload: p.payload,
      storedAs: p.storedAs,
      primaryHash: p.hashes[0]?.hash ?? null,
    })),
  );
  for (const p of todo) {
    results.set(eventKeyString(p.key), issueOf.has(p) ? "grouped" : "no-issue");
  }
  return results;

  /**
   * The issue owning the first of the event's hashes that any issue owns:
   * current hashes first, then the previous config's. Only current hashes
   * are ever claimed, so an old issue found by a secondary hash takes the
   * event's current hashes and later events find it directly.
   */
  function owner(p: Prepared): number | null {
    for (const h of [...p.hashes, ...p.secondaryHashes]) {
      const issueId = owners.get(hashKey(p.key.projectId, h.hash));
      if (issueId !== undefined) return issueId;
    }
    return null;
  }
}

function newIssueOf(p: Prepared) {
  const described = describeIssue(p.event);
  return {
    projectId: p.key.projectId,
    type: described.type,
    title: p.title ?? described.title,
    culprit: described.culprit,
    level: p.event.level,
    platform: p.event.platform,
    logger: p.event.logger,
    metadata: described.metadata,
    seenAt: p.event.timestamp,
    release: p.event.release,
  };
}

/** Sentry tells users apart by id, then email, username, IP (EventUser.tag_value). */
function userKeyOf(user: EventUser | null): string | null {
  if (!user) return null;
  for (const field of ["id", "email", "username", "ip_address"] as const) {
    const value = user[field];
    if (
      (typeof value === "string" && value !== "" && value !== "{{auto}}") ||
      typeof value === "number"
    ) {
      return `${field}:${value}`;
    }
  }
  return null;
}
