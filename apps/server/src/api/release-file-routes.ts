import {
  deleteReleaseFile,
  findRelease,
  findReleaseFile,
  insertReleaseFile,
  listReleaseFiles,
  renameReleaseFile,
} from "@sluice/db";
import { normalizeDebugId } from "@sluice/sourcemaps";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { UPLOAD_LIMITS } from "../uploads/upload-limits.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { organizationParam, projectParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { readMultipart } from "./read-multipart.ts";
import { serializeReleaseFile } from "./release-serializers.ts";
import { requireScope } from "./require-scope.ts";

const rename = z.object({ name: z.string().min(1).max(2048), dist: z.string().max(64).nullish() });

/** Resolves `:org` (and `:project` when in the path), `:version` and optional `:fileId`. */
async function releaseOf(c: Context<ApiEnv>) {
  const org = await organizationParam(c);
  if (c.req.param("project") !== undefined) await projectParam(c);
  const release = await findRelease(c.get("services").db.orm, org.id, c.req.param("version") ?? "");
  if (!release) throw notFound("release");
  return { org, release };
}

async function fileOf(c: Context<ApiEnv>) {
  const { org, release } = await releaseOf(c);
  const id = Number(c.req.param("fileId"));
  const file = Number.isSafeInteger(id)
    ? await findReleaseFile(c.get("services").db.orm, org.id, release.version, id)
    : null;
  if (!file) throw notFound("file");
  return file;
}

/**
 * The legacy release-file API that sentry-cli 2.x (`releases files`, and
 * uploads when the server accepts no bundles) and older bundler plugins use
 * (SENTRY_PROTOCOL.md §8.6): list (with `checksum` filters), multipart
 * upload with `file`, `name`, `dist` and `header` parts (409 when the name
 * exists), download, rename and delete; on the organization and project
 * paths. Files are symbolication artifacts of the release like bundle files.
 */
export function registerReleaseFileRoutes(api: Hono<ApiEnv>): void {
  for (const base of [
    "/api/0/organizations/:org/releases/:version/files",
    "/api/0/projects/:org/:project/releases/:version/files",
  ]) {
    api.get(base, requireScope("project:read"), async (c) => {
      const { db } = c.get("services");
      const { org, release } = await releaseOf(c);
      const checksums = c.req.queries("checksum") ?? [];
      const rows = await pageOf(c, (limit, offset) =>
        listReleaseFiles(db.orm, org.id, release.version, limit, offset),
      );
      return c.json(
        rows
          .filter((f) => checksums.length === 0 || checksums.includes(f.sha1))
          .map(serializeReleaseFile),
      );
    });

    api.post(base, requireScope("project:releases"), async (c) => {
      const { db, blobs } = c.get("services");
      const { org, release } = await releaseOf(c);
      const read = await readMultipart(c, UPLOAD_LIMITS.maxFileSize + 1024 * 1024);
      if (!read.ok) throw new ApiError(read.status, read.detail);
      const { files, fields } = read.form;
      const file = files.find((f) => f.field === "file");
      if (!file) throw new ApiError(400, "Missing uploaded file");
      const field = (name: string) => fields.find(([k]) => k === name)?.[1];
      const name = field("name") || file.filename;
      if (!name || name.length > 2048) {
        throw new ApiError(400, "File name must be 1 to 2048 characters");
      }
      const headers: Record<string, string> = {};
      for (const [key, header] of fields) {
        if (key !== "header") continue;
        const colon = header.indexOf(":");
        if (colon <= 0) throw new ApiError(400, `header "${header}" must be Key:Value`);
        headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
      }
      const bytes = file.bytes;
      const { key, sha1 } = await blobs.put("artifacts", bytes);
      const inserted = await insertReleaseFile(db.orm, {
        organizationId: org.id,
        release: release.version,
        dist: field("dist") ?? "",
        url: name,
        type: /\.map$/i.test(name.replace(/[?#].*$/, "")) ? "source_map" : "minified_source",
        debugId: normalizeDebugId(headers["debug-id"]),
        headers,
        size: bytes.length,
        sha1,
        blobKey: key,
      });
      if (!inserted)
        throw new ApiError(409, "A file matching this name already exists for the given release");
      return c.json(serializeReleaseFile(inserted), 201);
    });

    api.get(`${base}/:fileId`, requireScope("project:read"), async (c) => {
      const file = await fileOf(c);
      if (c.req.query("download") === undefined) return c.json(serializeReleaseFile(file));
      const bytes = await c.get("services").blobs.get(file.blobKey);
      if (!bytes) throw new ApiError(404, "the file's blob is missing (run `sluice verify`)");
      const filename = file.url.split("/").pop() || "file";
      return c.body(new Uint8Array(bytes), 200, {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": `attachment; filename="${filename.replace(/["\\\r\n]/g, "_")}"`,
      });
    });

    api.put(`${base}/:fileId`, requireScope("project:releases"), async (c) => {
      const file = await fileOf(c);
      const body = await readJsonBody(c, rename);
      const renamed = await renameReleaseFile(
        c.get("services").db.orm,
        file.id,
        body.name,
        body.dist ?? file.dist,
      ).catch((error: { code?: string }) => {
        if (error.code === "23505") throw new ApiError(409, "A file with this name already exists");
        throw error;
      });
      if (!renamed) throw notFound("file");
      return c.json(serializeReleaseFile(renamed));
    });

    api.delete(`${base}/:fileId`, requireScope("project:releases"), async (c) => {
      const file = await fileOf(c);
      await deleteReleaseFile(c.get("services").db.orm, file.id);
      return c.body(null, 204);
    });
  }
}
