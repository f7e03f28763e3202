import {
  addIssueUsers,
  claimIssueHashes,
  countIssueEvents,
  createIssue,
  type Database,
  type EventKey,
  type EventToProcess,
  eventKeyString,
  findIssuesByHashes,
  type HashClaim,
  type IssueCount,
  inTransaction,
  lockUnprocessedEvents,
  markEventsProcessed,
  readEvents,
} from "@sluice/db";
import { describeIssue, hashEvent } from "@sluice/grouping";
import { type EventUser, type NormalizedEvent, normalizeEvent } from "@sluice/protocol";
import type { EventProcessPayload } from "@sluice/queue";
import type { Logger } from "../logger.ts";
import type { EventSymbolicator } from "./event-symbolicator.ts";
import type { ReleaseSeenRecorder } from "./release-seen.ts";

export type ProcessResult = "grouped" | "no-issue" | "already-processed" | "missing";

/** What processing needs besides the jobs. */
export type ProcessDeps = {
  db: Database;
  log: Logger;
  symbolicate: EventSymbolicator;
  recordRelease: ReleaseSeenRecorder;
};

/** Another transaction created an issue for these hashes first; run again to join it. */
class LostIssueRace extends Error {}

/** SQLSTATEs a batch is simply run again for: deadlock, serialization failure. */
const RETRY_CODES = new Set(["40P01", "40001"]);
const RETRIES = 5;

/** An event read, normalized, symbolicated and hashed, ready to group. */
type Prepared = {
  key: EventKey;
  event: NormalizedEvent;
  hashes: { hash: string; variant: string }[];
  userKey: string | null;
  /** The symbolicated payload to store, when symbolication changed the event. */
  payload: Record<string, unknown> | null;
  /** Whether the row keeps its payload compressed (the new one is written the same way). */
  compressed: boolean;
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
 * transaction fails (the queue retries the jobs); a concurrent batch that
 * created the same issue first, or a deadlock, runs the batch again.
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
  const seen = new Set<string>();
  for (const key of keys) {
    const id = eventKeyString(key);
    // The same event twice in one batch (a retry beside the original) is grouped once.
    if (seen.has(id)) continue;
    seen.add(id);
    const row = stored.get(id);
    if (!row) outcomes.set(id, { ok: true, result: "missing" });
    else if (row.processedAt) outcomes.set(id, { ok: true, result: "already-processed" });
    else {
      try {
        prepared.push(await prepare(deps, row));
      } catch (error) {
        outcomes.set(id, { ok: false, error });
      }
    }
  }
  if (prepared.length > 0) {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await inTransaction(deps.db.pool, (client) => group(client, prepared));
        for (const [id, result] of results) outcomes.set(id, { ok: true, result });
        break;
      } catch (error) {
        const code = (error as { code?: string }).code ?? "";
        const retry = error instanceof LostIssueRace || RETRY_CODES.has(code);
        if (!retry || attempt >= RETRIES) throw error;
        deps.log.debug({ events: prepared.length, attempt, code }, "grouping raced; running again");
      }
    }
  }
  return keys.map(
    (key) => outcomes.get(eventKeyString(key)) ?? { ok: true, result: "already-processed" },
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
  const event = normalizeEvent(row.payload, {
    eventId: row.eventId,
    timestamp: row.timestamp,
    receivedAt: row.receivedAt,
  });
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
  return {
    key: { projectId: row.projectId, eventId: row.eventId, receivedAt: row.receivedAt },
    event,
    hashes: event.type === "transaction" ? [] : hashEvent(event),
    userKey: userKeyOf(event.user),
    payload,
    compressed: row.compressed,
  };
}

async function group(
  client: Parameters<typeof lockUnprocessedEvents>[0],
  prepared: Prepared[],
): Promise<Map<string, ProcessResult>> {
  // Safe without waiting for the WAL flush: this transaction is atomic and
  // only derives state. If a crash loses it, the events are still
  // unprocessed and the sweeper runs them again; the ingest commit behind
  // every 200 stays synchronous. Waiting would hold hot issues' row locks
  // through an fsync.
  await client.query("SET LOCAL synchronous_commit = off");
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
  const owners = await findIssuesByHashes(
    client,
    todo.flatMap((p) => p.hashes.map((h) => ({ projectId: p.key.projectId, hash: h.hash }))),
  );
  const issueOf = new Map<Prepared, number>();
  const claims: HashClaim[] = [];
  for (const p of todo) {
    if (p.event.type === "transaction") continue;
    let issueId = owner(p);
    if (issueId === null) {
      // A new group: one issue for every event of the batch that shares it.
      const created = await createIssue(client, newIssueOf(p));
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
  for (const [p, issueId] of issueOf) {
    const at = p.event.timestamp;
    const count = counts.get(issueId) ?? {
      issueId,
      events: 0,
      firstSeen: at,
      lastSeen: at,
      newUsers: newUsers.get(issueId) ?? 0,
      lastRelease: null,
      releaseAt: Number.NEGATIVE_INFINITY,
    };
    count.events += 1;
    if (at < count.firstSeen) count.firstSeen = at;
    if (at > count.lastSeen) count.lastSeen = at;
    if (p.event.release && at.getTime() >= count.releaseAt) {
      count.lastRelease = p.event.release;
      count.releaseAt = at.getTime();
    }
    counts.set(issueId, count);
  }
  await countIssueEvents(client, [...counts.values()]);
  await markEventsProcessed(
    client,
    todo.map((p) => ({
      ...p.key,
      issueId: issueOf.get(p) ?? null,
      payload: p.payload,
      compressed: p.compressed,
    })),
  );
  for (const p of todo) {
    results.set(eventKeyString(p.key), issueOf.has(p) ? "grouped" : "no-issue");
  }
  return results;

  /** The issue owning the first of the event's hashes (in their order) that any issue owns. */
  function owner(p: Prepared): number | null {
    for (const h of p.hashes) {
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
    title: described.title,
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
