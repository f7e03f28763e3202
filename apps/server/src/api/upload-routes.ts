import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { listArtifactBundles, recordUploadChunks, summarizeReleases } from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { assembleBundle } from "../uploads/assemble-bundle.ts";
import { ACCEPTED_UPLOADS, UPLOAD_LIMITS } from "../uploads/upload-limits.ts";
import type { ApiEnv } from "./api-env.ts";
import { namedProjects, organizationParam, projectParam, releaseParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { readMultipart } from "./read-multipart.ts";
import { isValidVersion, projectNames } from "./release-routes.ts";
import { requireScope } from "./require-scope.ts";

const gunzipAsync = promisify(gunzip);
const SHA1 = /^[0-9a-f]{40}$/;
/** Room for multipart boundaries and part headers beside the chunks' bytes. */
const MULTIPART_OVERHEAD = 1024 * 1024;

const sha1 = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(SHA1, "must be 40 hex digits"));

const bundleAssemble = z.object({
  checksum: sha1,
  chunks: z.array(sha1).max(10_000),
  projects: projectNames.min(1),
  version: z.string().refine(isValidVersion, "invalid release version").nullish(),
  dist: z.string().max(64).nullish(),
});

const releaseAssemble = z.object({ checksum: sha1, chunks: z.array(sha1).max(10_000) });

/** Sentry's chunk-upload error shape is `{"error": ...}` (src/sentry/api/endpoints/chunk.py). */
const chunkError = (c: Context, error: string) => c.json({ error }, 400);

/**
 * sentry-cli's upload protocol (SENTRY_PROTOCOL.md §8): the chunk-upload
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
      const parts = read.form.files;
      if (parts.length > UPLOAD_LIMITS.chunksPerRequest) return chunkError(c, "Too many chunks");
      const chunks: { sha1: string; bytes: Buffer }[] = [];
      let total = 0;
      for (const part of parts) {
        if (part.field !== "file" && part.field !== "file_gzip") continue;
        let bytes = Buffer.from(part.bytes);
        if (part.field === "file_gzip") {
          try {
            bytes = await gunzipAsync(bytes, { maxOutputLength: UPLOAD_LIMITS.chunkSize });
          } catch {
            return chunkError(c, "Chunk size too large, or not gzip");
          }
        }
        if (bytes.length > UPLOAD_LIMITS.chunkSize) return chunkError(c, "Chunk size too large");
        total += bytes.length;
        if (total > UPLOAD_LIMITS.maxRequestSize) return chunkError(c, "Request too large");
        const actual = createHash("sha1").update(bytes).digest("hex");
        if (actual !== part.filename.toLowerCase()) {
          return chunkError(c, `Chunk named ${part.filename} has SHA-1 ${actual}`);
        }
        chunks.push({ sha1: actual, bytes });
      }
      const stored = [];
      for (const chunk of chunks) {
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
