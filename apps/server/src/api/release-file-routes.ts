import {
  deleteReleaseFile,
  findReleaseFile,
  hasReleaseFile,
  insertReleaseFile,
  isStorableText,
  listReleaseFiles,
  renameReleaseFile,
} from "@sluice/db";
import { normalizeDebugId } from "@sluice/sourcemaps";
import contentDisposition from "content-disposition";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { fileKeyBytes, UPLOAD_LIMITS } from "../uploads/upload-limits.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { idParam, releaseParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { type Multipart, readMultipart } from "./read-multipart.ts";
import { serializeReleaseFile } from "./release-serializers.ts";
import { requireScope } from "./require-scope.ts";

const MAX_NAME_LENGTH = 2048;
const MAX_DIST_LENGTH = 64;
/** `header` parts one upload may carry (sentry-cli sends one or two: `Sourcemap`, `debug-id`). */
const MAX_HEADERS = 32;

const fileName = z.string().min(1).max(MAX_NAME_LENGTH);
const rename = z.object({ name: fileName, dist: z.string().max(MAX_DIST_LENGTH).nullish() });

/** A 400 unless release + dist + name fit the database's index. */
function checkFileKey(release: string, dist: string, name: string): void {
  if (fileKeyBytes(release, dist, name) > UPLOAD_LIMITS.maxFileKeyBytes) {
    const max = UPLOAD_LIMITS.maxFileKeyBytes;
    throw new ApiError(400, `name: release, dist and name must fit in ${max} bytes`);
  }
}

/**
 * The parts of a release file upload, checked before anything is stored:
 * `name` (else the file's name) of 1 to 2048 characters, `dist` of at most
 * 64, at most 32 `header` parts of `Key:Value`, all storable text; 400 otherwise.
 */
function uploadFields(form: Multipart, release: string) {
  const file = form.files.find((f) => f.field === "file");
  if (!file) throw new ApiError(400, "Missing uploaded file");
  const field = (name: string) => form.fields.find(([k]) => k === name)?.[1];
  const name = field("name") || file.filename;
  if (!name || name.length > MAX_NAME_LENGTH) {
    throw new ApiError(400, `File name must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  if (!isStorableText(name)) throw new ApiError(400, "name: must not contain NUL");
  const dist = field("dist") ?? "";
  if (dist.length > MAX_DIST_LENGTH || !isStorableText(dist)) {
    throw new ApiError(400, `dist: at most ${MAX_DIST_LENGTH} characters, no NUL`);
  }
  checkFileKey(release, dist, name);
  const headerParts = form.fields.filter(([k]) => k === "header").map(([, v]) => v);
  if (headerParts.length > MAX_HEADERS) {
    throw new ApiError(400, `header: at most ${MAX_HEADERS} headers`);
  }
  const headers: Record<string, string> = {};
  for (const header of headerParts) {
    const colon = header.indexOf(":");
    if (colon <= 0 || header.length > 4096 || !isStorableText(header)) {
      throw new ApiError(400, `header "${header.slice(0, 100)}" must be Key:Value`);
    }
    headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  return { file, name, dist, headers };
}

/** Resolves `:fileId` of the release in the path (and project, when scoped) or throws 404. */
async function fileOf(c: Context<ApiEnv>) {
  const { org, release } = await releaseParam(c);
  const id = idParam(c, "fileId");
  const file =
    id === null
      ? null
      : await findReleaseFile(c.get("services").db.orm, org.id, release.version, id);
  if (!file) throw notFound("file");
  return file;
}

/** `checksum` filters one listing may carry. */
const MAX_CHECKSUMS = 1_000;

const fileExists = () =>
  new ApiError(409, "A file matching this name already exists for the given release");

/**
 * The legacy release-file API that sentry-cli 2.x (`releases files`, and
 * uploads when the server accepts no bundles) and older bundler plugins use
 * (docs/protocol.md §8.6): list (with `checksum` filters), multipart
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
      const { org, release } = await releaseParam(c);
      const checksums = c.req.queries("checksum") ?? [];
      if (checksums.length > MAX_CHECKSUMS) {
        throw new ApiError(400, `checksum: at most ${MAX_CHECKSUMS} values`);
      }
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
      const { org, release } = await releaseParam(c);
      const read = await readMultipart(c, UPLOAD_LIMITS.maxFileSize + 1024 * 1024);
      if (!read.ok) throw new ApiError(read.status, read.detail);
      const { file, name, dist, headers } = uploadFields(read.form, release.version);
      // Refused requests store nothing: the name is checked before the blob is written.
      if (await hasReleaseFile(db.orm, org.id, release.version, dist, name)) throw fileExists();
      const bytes = file.bytes;
      const { key, sha1 } = await blobs.put("artifacts", bytes);
      const inserted = await insertReleaseFile(db.orm, {
        organizationId: org.id,
        release: release.version,
        dist,
        url: name,
        type: /\.map$/i.test(name.replace(/[?#].*$/, "")) ? "source_map" : "minified_source",
        debugId: normalizeDebugId(headers["debug-id"]),
        headers,
        size: bytes.length,
        sha1,
        blobKey: key,
      });
      // A concurrent upload of the same name won: its blob may stay unreferenced (content-addressed).
      if (!inserted) throw fileExists();
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
        // RFC 6266: an ASCII fallback and `filename*` in UTF-8, so any name is a valid header.
        "Content-Disposition": contentDisposition(filename),
      });
    });

    api.put(`${base}/:fileId`, requireScope("project:releases"), async (c) => {
      const file = await fileOf(c);
      const body = await readJsonBody(c, rename);
      checkFileKey(file.release ?? "", body.dist ?? file.dist, body.name);
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
