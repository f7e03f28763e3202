import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";
import { type Database, type Orm, withTransaction } from "../database.ts";
import { artifactBundles, artifacts, uploadChunks } from "../schema.ts";

export type Artifact = typeof artifacts.$inferSelect;
export type ArtifactBundle = typeof artifactBundles.$inferSelect;
export type NewArtifact = typeof artifacts.$inferInsert;

/** Records uploaded chunks (already in the blob store); a chunk uploaded twice is kept once. */
export async function recordUploadChunks(
  orm: Orm,
  organizationId: number,
  chunks: { sha1: string; size: number; blobKey: string }[],
): Promise<void> {
  if (chunks.length === 0) return;
  await orm
    .insert(uploadChunks)
    .values(chunks.map((c) => ({ organizationId, ...c })))
    .onConflictDoNothing();
}

/** The recorded chunks among `sha1s`, by SHA-1. */
export async function findUploadChunks(
  orm: Orm,
  organizationId: number,
  sha1s: string[],
): Promise<Map<string, { size: number; blobKey: string }>> {
  if (sha1s.length === 0) return new Map();
  const rows = await orm
    .select()
    .from(uploadChunks)
    .where(and(eq(uploadChunks.organizationId, organizationId), inArray(uploadChunks.sha1, sha1s)));
  return new Map(rows.map((r) => [r.sha1, { size: r.size, blobKey: r.blobKey }]));
}

export async function findArtifactBundle(
  orm: Orm,
  organizationId: number,
  checksum: string,
): Promise<ArtifactBundle | null> {
  const rows = await orm
    .select()
    .from(artifactBundles)
    .where(
      and(
        eq(artifactBundles.organizationId, organizationId),
        eq(artifactBundles.checksum, checksum),
      ),
    );
  return rows[0] ?? null;
}

export type BundleClaim = {
  organizationId: number;
  /** SHA-1 of the whole bundle, lowercase hex. */
  checksum: string;
  chunks: string[];
  projectIds: number[];
  release: string | null;
  dist: string | null;
  /** A claim older than this may be taken over (its assembler died), ms. */
  staleAfterMs: number;
};

/**
 * Claims the assembly of a bundle: inserts it in state `assembling`, or
 * takes over one whose assembler stopped (claim older than `staleAfterMs`)
 * or that failed. Returns the bundle row when this caller must assemble it,
 * null when another assembler holds a live claim or it is already `ok`.
 */
export async function claimArtifactBundle(
  orm: Orm,
  claim: BundleClaim,
): Promise<ArtifactBundle | null> {
  const rows = await orm
    .insert(artifactBundles)
    .values({
      organizationId: claim.organizationId,
      checksum: claim.checksum,
      chunks: claim.chunks,
      projectIds: claim.projectIds,
      release: claim.release,
      dist: claim.dist,
      state: "assembling",
    })
    .onConflictDoUpdate({
      target: [artifactBundles.organizationId, artifactBundles.checksum],
      set: {
        state: "assembling",
        detail: null,
        claimedAt: sql`now()`,
        chunks: claim.chunks,
        projectIds: claim.projectIds,
        release: claim.release,
        dist: claim.dist,
      },
      setWhere: sql`${artifactBundles.state} = 'error' OR (${artifactBundles.state} = 'assembling' AND ${artifactBundles.claimedAt} < now() - make_interval(secs => ${claim.staleAfterMs / 1000}))`,
    })
    .returning();
  return rows[0] ?? null;
}

/**
 * Finishes an assembly in one transaction: replaces the bundle's artifacts
 * with `files` and sets its state `ok`, or sets `error` with `detail`.
 */
export async function finishArtifactBundle(
  db: Database,
  bundleId: number,
  outcome:
    | { state: "ok"; bundleDebugId: string | null; files: NewArtifact[] }
    | { state: "error"; detail: string },
): Promise<void> {
  await withTransaction(db, async ({ orm: tx }) => {
    if (outcome.state === "error") {
      await tx
        .update(artifactBundles)
        .set({ state: "error", detail: outcome.detail })
        .where(eq(artifactBundles.id, bundleId));
      return;
    }
    await tx.delete(artifacts).where(eq(artifacts.bundleId, bundleId));
    if (outcome.files.length > 0) await tx.insert(artifacts).values(outcome.files);
    await tx
      .update(artifactBundles)
      .set({
        state: "ok",
        detail: null,
        bundleId: outcome.bundleDebugId,
        fileCount: outcome.files.length,
      })
      .where(eq(artifactBundles.id, bundleId));
  });
}

/** Assembled bundles of a project, newest first. */
export async function listArtifactBundles(
  orm: Orm,
  organizationId: number,
  projectId: number,
  limit: number,
  offset: number,
): Promise<ArtifactBundle[]> {
  return orm
    .select()
    .from(artifactBundles)
    .where(
      and(
        eq(artifactBundles.organizationId, organizationId),
        eq(artifactBundles.state, "ok"),
        sql`${projectId} = ANY(${artifactBundles.projectIds})`,
      ),
    )
    .orderBy(sql`${artifactBundles.id} DESC`)
    .limit(limit)
    .offset(offset);
}

/**
 * The newest source map with `debugId` in a bundle of the organization that
 * belongs to `projectId` (Sentry's ProjectArtifactBundle filter).
 */
export async function findSourceMapByDebugId(
  orm: Orm,
  organizationId: number,
  projectId: number,
  debugId: string,
): Promise<Artifact | null> {
  const rows = await orm
    .select({ artifact: artifacts })
    .from(artifacts)
    .innerJoin(artifactBundles, eq(artifactBundles.id, artifacts.bundleId))
    .where(
      and(
        eq(artifacts.organizationId, organizationId),
        eq(artifacts.debugId, debugId),
        eq(artifacts.type, "source_map"),
        sql`${projectId} = ANY(${artifactBundles.projectIds})`,
      ),
    )
    .orderBy(sql`${artifacts.id} DESC`)
    .limit(1);
  return rows[0]?.artifact ?? null;
}

/**
 * The newest file of `release` + `dist` at the first of `urls` that has one:
 * legacy release files and files of bundles uploaded with that release and
 * (for bundles) belonging to `projectId`.
 */
export async function findArtifactByUrl(
  orm: Orm,
  organizationId: number,
  projectId: number,
  release: string,
  dist: string,
  urls: string[],
): Promise<Artifact | null> {
  if (urls.length === 0) return null;
  const rows = await orm
    .select({ artifact: artifacts })
    .from(artifacts)
    .leftJoin(artifactBundles, eq(artifactBundles.id, artifacts.bundleId))
    .where(
      and(
        eq(artifacts.organizationId, organizationId),
        eq(artifacts.release, release),
        eq(artifacts.dist, dist),
        inArray(artifacts.url, urls),
        sql`(${artifacts.bundleId} IS NULL OR ${projectId} = ANY(${artifactBundles.projectIds}))`,
      ),
    )
    .orderBy(sql`${artifacts.id} DESC`);
  for (const url of urls) {
    const hit = rows.find((r) => r.artifact.url === url);
    if (hit) return hit.artifact;
  }
  return null;
}

/** Whether the organization has any uploaded file (bundle or legacy release file). */
export async function hasArtifacts(orm: Orm, organizationId: number): Promise<boolean> {
  const rows = await orm
    .select({ id: artifacts.id })
    .from(artifacts)
    .where(eq(artifacts.organizationId, organizationId))
    .limit(1);
  return rows.length > 0;
}

/** Legacy release files (not from bundles) of a release, by name. */
export async function listReleaseFiles(
  orm: Orm,
  organizationId: number,
  release: string,
  limit: number,
  offset: number,
): Promise<Artifact[]> {
  return orm
    .select()
    .from(artifacts)
    .where(
      and(
        eq(artifacts.organizationId, organizationId),
        eq(artifacts.release, release),
        isNull(artifacts.bundleId),
      ),
    )
    .orderBy(asc(artifacts.url), asc(artifacts.id))
    .limit(limit)
    .offset(offset);
}

/** Adds a legacy release file; null when one with the same name and dist exists (409). */
export async function insertReleaseFile(orm: Orm, file: NewArtifact): Promise<Artifact | null> {
  const rows = await orm.insert(artifacts).values(file).onConflictDoNothing().returning();
  return rows[0] ?? null;
}

/** Whether the release already has a legacy file of that name and dist (an upload would be a 409). */
export async function hasReleaseFile(
  orm: Orm,
  organizationId: number,
  release: string,
  dist: string,
  url: string,
): Promise<boolean> {
  const rows = await orm
    .select({ id: artifacts.id })
    .from(artifacts)
    .where(
      and(
        eq(artifacts.organizationId, organizationId),
        eq(artifacts.release, release),
        eq(artifacts.dist, dist),
        eq(artifacts.url, url),
        isNull(artifacts.bundleId),
      ),
    )
    .limit(1);
  return rows.length > 0;
}

export async function findReleaseFile(
  orm: Orm,
  organizationId: number,
  release: string,
  id: number,
): Promise<Artifact | null> {
  const rows = await orm
    .select()
    .from(artifacts)
    .where(
      and(
        eq(artifacts.id, id),
        eq(artifacts.organizationId, organizationId),
        eq(artifacts.release, release),
        isNull(artifacts.bundleId),
      ),
    );
  return rows[0] ?? null;
}

export async function deleteReleaseFile(orm: Orm, id: number): Promise<void> {
  await orm.delete(artifacts).where(and(eq(artifacts.id, id), isNull(artifacts.bundleId)));
}

export async function renameReleaseFile(
  orm: Orm,
  id: number,
  url: string,
  dist: string,
): Promise<Artifact | null> {
  const rows = await orm
    .update(artifacts)
    .set({ url, dist })
    .where(and(eq(artifacts.id, id), isNull(artifacts.bundleId)))
    .returning();
  return rows[0] ?? null;
}

/** Every blob the database refers to, with the SHA-1 its bytes must have (for `sluice verify`). */
export async function* listBlobReferences(
  orm: Orm,
  batch = 1_000,
): AsyncGenerator<{ table: string; id: string; blobKey: string; sha1: string }> {
  const sources = [
    sql`SELECT 'attachments' AS "table", id::text AS id, blob_key AS "blobKey", sha1 FROM attachments`,
    sql`SELECT 'artifacts' AS "table", id::text AS id, blob_key AS "blobKey", sha1 FROM artifacts`,
    sql`SELECT 'upload_chunks' AS "table", organization_id::text || '/' || sha1 AS id, blob_key AS "blobKey", sha1 FROM upload_chunks`,
  ];
  for (const source of sources) {
    for (let offset = 0; ; offset += batch) {
      const result = await orm.execute(sql`${source} ORDER BY 2 LIMIT ${batch} OFFSET ${offset}`);
      const rows = result.rows as { table: string; id: string; blobKey: string; sha1: string }[];
      yield* rows;
      if (rows.length < batch) break;
    }
  }
}
