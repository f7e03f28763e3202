import type { Queryable } from "../database.ts";

/**
 * "Resolve in next release" and "resolve in release", after Sentry's
 * GroupResolution (src/sentry/models/groupresolution.py `has_resolution`):
 * an issue resolved that way stays resolved for events its resolution
 * covers and regresses on any other.
 */

/** Sentry's GroupResolution.Type, as `issues.resolution_type` stores it. */
export type ResolutionType = "in_next_release" | "in_release";

/** A release resolution with the time its release is ordered by (null: unknown). */
export type Resolution = { type: ResolutionType; release: string; releaseAt: Date | null };

/** An event's release with the time it is ordered by (null: unknown). */
export type EventRelease = { version: string; at: Date | null };

const SEMVER = /^(?:(.+)@)?v?(\d{1,9})\.(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:[-+].*)?$/;

/**
 * Orders two versions by semver when both are `[package@]X.Y[.Z[.W]]` of one
 * package (build and pre-release suffixes ignored); null when either is not,
 * and the releases' dates decide. Sentry orders semver projects this way
 * (`follows_semver_versioning_scheme`, Relay's `compare_version`).
 */
export function compareSemver(a: string, b: string): number | null {
  const x = SEMVER.exec(a);
  const y = SEMVER.exec(b);
  if (!x || !y || (x[1] ?? "") !== (y[1] ?? "")) return null;
  for (let i = 2; i <= 5; i++) {
    const d = Number(x[i] ?? 0) - Number(y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * Whether an event of `event`'s release (null: none) is covered by the
 * resolution, i.e. does not reopen the issue. As Sentry's `has_resolution`:
 * an event without a release is covered; `in_next_release` (the release
 * was the project's latest when resolving) covers that release and older
 * ones; `in_release` covers releases older than it but not itself. Older
 * is by semver when both versions are semver, else by release date
 * (`COALESCE(date_released, date_added)`, Sentry's `release_order_date`);
 * a release whose date is unknown counts as newer.
 */
export function resolutionHolds(resolution: Resolution, event: EventRelease | null): boolean {
  if (event === null) return true;
  if (resolution.type === "in_next_release" && event.version === resolution.release) return true;
  if (resolution.type === "in_release" && event.version === resolution.release) return false;
  const semver = compareSemver(resolution.release, event.version);
  if (semver !== null) return semver > 0;
  if (resolution.releaseAt === null || event.at === null) return false;
  return resolution.releaseAt.getTime() > event.at.getTime();
}

/**
 * The project's most recent release by `COALESCE(date_released, created_at)`
 * (Sentry's `most_recent_release`, what "resolve in next release" pins),
 * null when the project has none.
 */
export async function findLatestProjectRelease(
  db: Queryable,
  projectId: number,
): Promise<string | null> {
  const result = await db.query(
    `SELECT r.version FROM releases r JOIN release_projects rp ON rp.release_id = r.id
      WHERE rp.project_id = $1
      ORDER BY COALESCE(r.date_released, r.created_at) DESC, r.id DESC LIMIT 1`,
    [projectId],
  );
  return (result.rows[0]?.version as string | undefined) ?? null;
}

/** Sentry's answer when a project has no release to resolve by (update.py's validator). */
const NO_RELEASE = "No release data present in the system to form a basis for 'Next Release'";

/** `statusDetails` of a resolve, as Sentry's API takes it. */
export type ResolveDetails = { inNextRelease?: boolean; inRelease?: string };

/**
 * The release resolution a resolve with `details` records for an issue of
 * `projectId` (Sentry's src/sentry/api/helpers/group_index/update.py):
 * `inNextRelease` pins the project's latest release (`in_next_release`),
 * `inRelease` a release of the project by version, `"latest"` its latest
 * (`in_release`); neither: null (a plain resolve). An error, with Sentry's
 * wording, when the project has no release or not that one.
 */
export async function resolutionOfDetails(
  db: Queryable,
  projectId: number,
  details: ResolveDetails,
): Promise<{ resolution: { type: ResolutionType; release: string } | null } | { error: string }> {
  if (details.inNextRelease) {
    const latest = await findLatestProjectRelease(db, projectId);
    if (!latest) return { error: NO_RELEASE };
    return { resolution: { type: "in_next_release", release: latest } };
  }
  if (details.inRelease !== undefined) {
    if (details.inRelease === "latest") {
      const latest = await findLatestProjectRelease(db, projectId);
      if (!latest) return { error: NO_RELEASE };
      return { resolution: { type: "in_release", release: latest } };
    }
    const found = await db.query(
      `SELECT 1 FROM releases r JOIN release_projects rp ON rp.release_id = r.id
        WHERE rp.project_id = $1 AND r.version = $2`,
      [projectId, details.inRelease],
    );
    if (found.rows.length === 0)
      return { error: "Unable to find a release with the given version." };
    return { resolution: { type: "in_release", release: details.inRelease } };
  }
  return { resolution: null };
}

/**
 * Sentry's `statusDetails` of an issue (src/sentry/api/serializers/models/
 * group.py `_get_status`): `{inNextRelease: true}` or `{inRelease: version}`
 * for a release resolution of a resolved issue, else `{}`.
 */
export function statusDetailsOf(issue: {
  status: string;
  resolutionType: string | null;
  resolutionRelease: string | null;
}): { inNextRelease?: true; inRelease?: string } {
  if (issue.status !== "resolved" || issue.resolutionRelease === null) return {};
  if (issue.resolutionType === "in_next_release") return { inNextRelease: true };
  if (issue.resolutionType === "in_release") return { inRelease: issue.resolutionRelease };
  return {};
}
