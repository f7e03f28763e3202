import { findProjectKey, listProjectKeys, type ProjectKey, updateProjectKey } from "@sluice/db";
import { formatDsn, isPublicKey } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { keyRateLimitInput, keyRateLimitOf } from "../key-rate-limit.ts";
import type { ApiEnv } from "./api-env.ts";
import { notFound } from "./api-error.ts";
import { storableText } from "./input.ts";
import { projectParam } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";

/**
 * `PUT …/keys/{key_id}/` as Sentry's ProjectKeyDetailsEndpoint reads it
 * (src/sentry/api/endpoints/project_key_details.py): `rateLimit` as
 * `keyRateLimitInput` reads it, or null to clear it; `name`; `isActive`.
 */
const keyUpdate = z.object({
  name: storableText(64).min(1).optional(),
  isActive: z.boolean().optional(),
  rateLimit: keyRateLimitInput.nullable().optional(),
});

function serializeKey(c: Context<ApiEnv>, key: ProjectKey) {
  const { config } = c.get("services");
  const dsn = formatDsn(config.publicUrl, key.publicKey, key.projectId);
  return {
    id: key.publicKey,
    name: key.label,
    label: key.label,
    public: key.publicKey,
    secret: null,
    projectId: key.projectId,
    isActive: key.isActive,
    rateLimit:
      key.rateLimitCount !== null && key.rateLimitWindow !== null
        ? { window: key.rateLimitWindow, count: key.rateLimitCount }
        : null,
    dsn: { public: dsn, secret: dsn },
    dateCreated: key.createdAt.toISOString(),
  };
}

/** The key `:keyId` (its public key, as Sentry's key ids are) of the path's project, or 404. */
async function keyParam(c: Context<ApiEnv>) {
  const project = await projectParam(c);
  const id = c.req.param("keyId") ?? "";
  const key = isPublicKey(id) ? await findProjectKey(c.get("services").db.orm, id) : null;
  if (!key || key.projectId !== project.id) throw notFound("key");
  return key;
}

/**
 * A project's DSN keys (Sentry's ProjectKeysEndpoint and
 * ProjectKeyDetailsEndpoint): list, one key, and `PUT` of its name,
 * `isActive` and rate limit. Ingest reads a changed key within its key
 * cache's 10 s.
 */
export function registerKeyRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/projects/:org/:project/keys", requireScope("project:read"), async (c) => {
    const project = await projectParam(c);
    const keys = await listProjectKeys(c.get("services").db.orm, project.id);
    return c.json(keys.map((key) => serializeKey(c, key)));
  });

  api.get("/api/0/projects/:org/:project/keys/:keyId", requireScope("project:read"), async (c) =>
    c.json(serializeKey(c, await keyParam(c))),
  );

  api.put("/api/0/projects/:org/:project/keys/:keyId", requireScope("project:write"), async (c) => {
    const key = await keyParam(c);
    const body = await readJsonBody(c, keyUpdate);
    const rateLimit = body.rateLimit === undefined ? undefined : keyRateLimitOf(body.rateLimit);
    const updated = await updateProjectKey(c.get("services").db.orm, key.id, {
      label: body.name,
      isActive: body.isActive,
      rateLimit,
    });
    if (!updated) throw notFound("key");
    return c.json(serializeKey(c, updated));
  });
}
