import { listArtifactBundles, recordUploadChunks, summarizeReleases } from "@sluice/db";
import { isValidReleaseVersion } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { assembleBundle } from "../uploads/assemble-bundle.ts";
import { ACCEPTED_UPLOADS, UPLOAD_LIMITS } from "../uploads/upload-limits.ts";
import { MAX_ASSEMBLE_CHUNKS, sha1Checksum, validateChunks } from "../uploads/validate-chunks.ts";
import type { ApiEnv } from "./api-env.ts";
import { namedProjects, organizationParam, projectParam, releaseParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { readMultipart } from "./read-multipart.ts";
import { projectNames } from "./release-routes.ts";
import { requireScope } from "./require-scope.ts";

/** Room for multipart boundaries and part headers beside the chunks' bytes. */
const MULTIPART_OVERHEAD = 1024 * 1024;

const bundleAssemble = z.object({
  checksum: sha1Checksum,
  chunks: z.array(sha1Checksum).max(MAX_ASSEMBLE_CHUNKS),
  projects: projectNames.min(1),
  version: z.string().refine(isValidReleaseVersion, "invalid release version").nullish(),
  dist: z.string().max(64).nullish(),
});

const releaseAssemble = z.object({
  checksum: sha1Checksum,
  chunks: z.array(sha1Checksum).max(MAX_ASSEMBLE_CHUNKS),
});

/** Sentry's chunk-upload error shape is `{"error": ...}` (src/sentry/api/endpoints/chunk.py). */
const chunkError = (c: Context, error: string) => c.json({ error }, 400);

/**
 * sentry-cli's upload protocol (docs/protocol.md §8): the chunk-upload
 * options, chunk POSTs (multipart, parts named by the SHA-1 of their
 * uncompressed bytes, `file_gzip` parts gzipped), and the two assemble
 * endpoints, for artifact bundles and for 2.x release bundles.
 */
export function registerUploadRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/organizations/:org/chunk-upload", requireScope("project:releases"), async (c) => {
    const org = await organizationParam(c);
    const { publicUrl } = c.get("services").config;
    return c.json({
      url: new URL(`/api/0/organizations/${org.slug}/chunk-upload/`, publicUrl).toString(),
      chunkSize: UPLOAD_LIMITS.chunkSize,
      chunksPerRequest: UPLOAD_LIMITS.chunksPerRequest,
      maxFileSize: UPLOAD_LIMITS.maxFileSize,
      maxRequestSize: UPLOAD_LIMITS.maxRequestSize,
      maxWait: UPLOAD_LIMITS.maxWait,
      concurrency: UPLOAD_LIMITS.concurrency,
      hashAlgorithm: "sha1",
      compression: ["gzip"],
      accept: ACCEPTED_UPLOADS,
    });
  });

  api.post(
    "/api/0/organizations/:org/chunk-upload",
    requireScope("project:releases"),
    async (c) => {
      const { db, blobs } = c.get("services");
      const org = await organizationParam(c);
      const read = await readMultipart(c, UPLOAD_LIMITS.maxRequestSize + MULTIPART_OVERHEAD);
      if (!read.ok) return chunkError(c, read.status === 413 ? "Request too large" : read.detail);
      const checked = await validateChunks(read.form.files);
      if (!checked.ok) return chunkError(c, checked.error);
      const stored = [];
      for (const chunk of checked.chunks) {
        const { key } = await blobs.put("chunks", chunk.bytes);
        stored.push({ sha1: chunk.sha1, size: chunk.bytes.length, blobKey: key });
      }
      await recordUploadChunks(db.orm, org.id, stored);
      return c.body(null, 200);
    },
  );

  api.post(
    "/api/0/organizations/:org/artifactbundle/assemble",
    requireScope("project:releases"),
    async (c) => {
      const services = c.get("services");
      const org = await organizationParam(c);
      const body = await readJsonBody(c, bundleAssemble);
      const projects = await namedProjects(c, org.id, body.projects);
      if (!projects) {
        return c.json({ error: "One or more projects are invalid" }, 400);
      }
      return c.json(
        await assembleBundle(services, {
          organizationId: org.id,
          checksum: body.checksum,
          chunks: body.chunks,
          projectIds: projects.map((p) => p.id),
          release: body.version ?? null,
          dist: body.version ? (body.dist ?? null) : null,
        }),
      );
    },
  );

  api.get(
    "/api/0/projects/:org/:project/files/artifact-bundles",
    requireScope("project:read"),
    async (c) => {
      const { db } = c.get("services");
      const project = await projectParam(c);
      const rows = await pageOf(c, (limit, offset) =>
        listArtifactBundles(db.orm, project.organizationId, project.id, limit, offset),
      );
      // Sentry's ArtifactBundlesEndpoint shape.
      return c.json(
        rows.map((b) => ({
          bundleId: b.bundleId ?? b.checksum,
          associations: b.release ? [{ release: b.release, dist: b.dist || null }] : [],
          fileCount: b.fileCount,
          date: b.createdAt.toISOString(),
          dateModified: b.claimedAt.toISOString(),
        })),
      );
    },
  );

  api.post(
    "/api/0/organizations/:org/releases/:version/assemble",
    requireScope("project:releases"),
    async (c) => {
      const services = c.get("services");
      const { org, release } = await releaseParam(c);
      const body = await readJsonBody(c, releaseAssemble);
      const [summary] = await summarizeReleases(services.db.orm, org.id, [release]);
      return c.json(
        await assembleBundle(services, {
          organizationId: org.id,
          checksum: body.checksum,
          chunks: body.chunks,
          projectIds: summary?.projects.map((p) => p.id) ?? [],
          release: release.version,
          dist: null,
        }),
      );
    },
  );
}
