import { type Database, recordReleaseSeen } from "@sluice/db";

/** Records that an event of a release (and environment) reached a project at a time. */
export type ReleaseSeenRecorder = (
  projectId: number,
  release: string,
  environment: string | null,
  at: Date,
) => Promise<void>;

/** How far past the last time this worker wrote a release may move before it writes again, ms. */
const THROTTLE_MS = 60_000;
const MAX_ENTRIES = 10_000;

/**
 * `recordReleaseSeen` behind a per-worker memory of what it already wrote:
 * an event whose time falls inside the first/last-seen range this worker
 * wrote (or within a minute after it) costs no query at all, so a busy
 * release is one write a minute per worker, not a read per event. The
 * memory is bounded (cleared past 10,000 releases).
 */
export function createReleaseSeenRecorder(db: Database): ReleaseSeenRecorder {
  const written = new Map<string, { first: number; last: number }>();
  return async (projectId, release, environment, at) => {
    const key = `${projectId}\u0000${release}\u0000${environment ?? ""}`;
    const time = at.getTime();
    const known = written.get(key);
    if (known && known.first <= time && time <= known.last + THROTTLE_MS) return;
    await recordReleaseSeen(db.pool, projectId, release, environment, at);
    if (written.size >= MAX_ENTRIES) written.clear();
    written.set(key, {
      first: Math.min(known?.first ?? time, time),
      last: Math.max(known?.last ?? time, time),
    });
  };
}
