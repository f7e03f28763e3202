import {
  type Artifact,
  type Database,
  findArtifactByUrl,
  findProjectById,
  findSourceMapByDebugId,
  hasArtifacts,
} from "@sluice/db";
import type { NormalizedEvent } from "@sluice/protocol";
import {
  type ArtifactLookup,
  type ArtifactRef,
  SourceMapCache,
  type SymbolicationResult,
  symbolicateEvent,
} from "@sluice/sourcemaps";
import type { BlobStore } from "@sluice/storage";

/** Symbolicates one event of a project; null when it has no JavaScript frames to map. */
export type EventSymbolicator = (
  event: NormalizedEvent,
  projectId: number,
) => Promise<SymbolicationResult | null>;

const JS_PLATFORMS = new Set(["javascript", "node"]);
/** How long "this organization has uploads (or not)" is believed, ms. */
const UPLOADS_CACHE_MS = 10_000;

/**
 * The worker's symbolication step: uploaded artifacts are found in the
 * `artifacts` table (by debug id, else release + dist + URL, within the
 * project's organization and bundles of the project) and read from the blob
 * store; parsed source maps are shared by all events through one cache of at
 * most `cacheBytes` of map source, and whether an organization has any
 * uploads is remembered for ten seconds, so that organizations without
 * source maps pay one indexed query per ten seconds, not one per frame.
 */
export function createEventSymbolicator(
  db: Database,
  blobs: BlobStore,
  cacheBytes: number,
): EventSymbolicator {
  const cache = new SourceMapCache(cacheBytes);
  const organizations = new Map<number, number>();
  const uploads = new Map<number, { has: boolean; until: number }>();
  const anyUploads = async (orgId: number) => {
    const cached = uploads.get(orgId);
    if (cached && cached.until > Date.now()) return cached.has;
    const has = await hasArtifacts(db.orm, orgId);
    uploads.set(orgId, { has, until: Date.now() + UPLOADS_CACHE_MS });
    return has;
  };
  return async (event, projectId) => {
    if (!hasJsFrames(event)) return null;
    let organizationId = organizations.get(projectId);
    if (organizationId === undefined) {
      const project = await findProjectById(db.orm, projectId);
      if (!project) return null;
      organizationId = project.organizationId;
      organizations.set(projectId, organizationId);
    }
    const orgId = organizationId;
    const ref = (artifact: Artifact | null): ArtifactRef | null =>
      artifact && {
        url: artifact.url,
        type: artifact.type,
        headers: artifact.headers,
        sha1: artifact.sha1,
        key: artifact.blobKey,
      };
    const lookup: ArtifactLookup = {
      sourceMapByDebugId: async (debugId) =>
        ref(await findSourceMapByDebugId(db.orm, orgId, projectId, debugId)),
      anyUploads: () => anyUploads(orgId),
      byUrl: async (release, dist, urls) =>
        ref(await findArtifactByUrl(db.orm, orgId, projectId, release, dist, urls)),
      read: (artifact) => blobs.get(artifact.key),
    };
    return symbolicateEvent(event, lookup, cache);
  };
}

function hasJsFrames(event: NormalizedEvent): boolean {
  const stacks = [
    ...event.exceptions.map((e) => e.stacktrace),
    ...event.threads.map((t) => t.stacktrace),
    event.stacktrace,
  ];
  return stacks.some((stack) =>
    stack?.frames.some((frame) => JS_PLATFORMS.has(frame.platform ?? event.platform)),
  );
}
