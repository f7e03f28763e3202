import {
  addIssueUser,
  claimIssueHashes,
  countIssueEvent,
  createIssue,
  type Database,
  findIssueByHashes,
  inTransaction,
  lockEvent,
  markEventProcessed,
  readEvent,
} from "@sluice/db";
import { describeIssue, hashEvent } from "@sluice/grouping";
import { type EventUser, type NormalizedEvent, normalizeEvent } from "@sluice/protocol";
import type { EventProcessPayload } from "@sluice/queue";
import type { Logger } from "../logger.ts";
import type { EventSymbolicator } from "./event-symbolicator.ts";
import type { ReleaseSeenRecorder } from "./release-seen.ts";

export type ProcessResult = "grouped" | "no-issue" | "already-processed" | "missing";

/** What processing needs besides the job. */
export type ProcessDeps = {
  db: Database;
  log: Logger;
  symbolicate: EventSymbolicator;
  recordRelease: ReleaseSeenRecorder;
};

/** Another transaction created the issue for these hashes first; run again to join it. */
class LostIssueRace extends Error {}

const RACE_RETRIES = 5;

/**
 * The `event.process` job. First, without locks: loads the stored event,
 * normalizes it, symbolicates its JavaScript frames through uploaded source
 * maps (so that grouping sees original files and lines) and records its
 * release as seen. Then in one transaction: locks the event row (a job
 * that finds it processed stops), computes the group hashes, joins the issue
 * that owns the first of them or creates one, counts the event into it
 * (times seen, first and last seen and release, distinct users), stores the
 * symbolicated payload when symbolication changed it, and marks the event
 * processed. Running it again for a processed event changes nothing.
 * Throws on database failure (the queue retries).
 */
export async function processEvent(
  deps: ProcessDeps,
  job: EventProcessPayload,
): Promise<ProcessResult> {
  const receivedAt = new Date(job.receivedAt);
  const row = await readEvent(deps.db.pool, job.projectId, job.eventId, receivedAt);
  if (!row) return "missing";
  if (row.processedAt) return "already-processed";
  const event = normalizeEvent(row.payload, {
    eventId: job.eventId,
    timestamp: row.timestamp,
    receivedAt,
  });
  let payload: Record<string, unknown> | null = null;
  if (event.type !== "transaction") {
    const symbolicated = await deps.symbolicate(event, job.projectId);
    if (symbolicated && (symbolicated.mappedFrames > 0 || symbolicated.errors.length > 0)) {
      event.errors = [...event.errors, ...symbolicated.errors];
      payload = { ...event.raw, errors: event.errors };
    }
  }
  if (event.release) {
    await deps.recordRelease(job.projectId, event.release, event.environment, event.timestamp);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(deps.db.pool, (client) =>
        groupEvent(client, job, receivedAt, event, payload),
      );
    } catch (error) {
      if (!(error instanceof LostIssueRace) || attempt >= RACE_RETRIES) throw error;
      deps.log.debug({ eventId: job.eventId, attempt }, "issue created concurrently; joining it");
    }
  }
}

async function groupEvent(
  client: Parameters<typeof lockEvent>[0],
  job: EventProcessPayload,
  receivedAt: Date,
  event: NormalizedEvent,
  payload: Record<string, unknown> | null,
): Promise<ProcessResult> {
  // Safe without waiting for the WAL flush: this transaction is atomic and
  // only derives state. If a crash loses it, the event is still unprocessed
  // and the sweeper runs it again; the ingest commit behind every 200 stays
  // synchronous. Waiting would hold a hot issue's row lock through an fsync.
  await client.query("SET LOCAL synchronous_commit = off");
  const row = await lockEvent(client, job.projectId, job.eventId, receivedAt);
  if (!row) return "missing";
  if (row.processedAt) return "already-processed";
  if (event.type === "transaction") {
    await markEventProcessed(client, job.projectId, job.eventId, receivedAt, null);
    return "no-issue";
  }
  const hashes = hashEvent(event);
  let issueId = await findIssueByHashes(
    client,
    job.projectId,
    hashes.map((h) => h.hash),
  );
  if (issueId === null) {
    const described = describeIssue(event);
    issueId = await createIssue(client, {
      projectId: job.projectId,
      type: described.type,
      title: described.title,
      culprit: described.culprit,
      level: event.level,
      platform: event.platform,
      logger: event.logger,
      metadata: described.metadata,
      seenAt: event.timestamp,
      release: event.release,
    });
    if ((await claimIssueHashes(client, job.projectId, issueId, hashes)) === 0)
      throw new LostIssueRace();
  } else if (hashes.length > 1) {
    await claimIssueHashes(client, job.projectId, issueId, hashes);
  }
  const userKey = userKeyOf(event.user);
  const newUser = userKey !== null && (await addIssueUser(client, issueId, userKey));
  await countIssueEvent(client, issueId, event.timestamp, newUser ? 1 : 0, event.release);
  await markEventProcessed(client, job.projectId, job.eventId, receivedAt, issueId, payload);
  return "grouped";
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
