import {
  createDeploy,
  deleteRelease,
  ensureRelease,
  listDeploys,
  listReleases,
  type Release,
  type ReleaseFields,
  summarizeReleases,
  updateRelease,
} from "@sluice/db";
import { isValidEnvironmentName, isValidReleaseVersion } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import {
  namedProjects,
  organizationAndAccess,
  organizationParam,
  projectParam,
  releaseParam,
} from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { readJsonBody } from "./read-json-body.ts";
import { serializeDeploy, serializeRelease } from "./release-serializers.ts";
import { requireScope } from "./require-scope.ts";

/** Projects a body may name at once (slugs, as sentry-cli sends, or ids). */
const MAX_NAMED_PROJECTS = 1_000;

/** Project slugs or ids named in a request body. */
export const projectNames = z
  .array(
    z.union([z.string().min(1).max(200), z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)]),
  )
  .max(MAX_NAMED_PROJECTS);

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const commit = z.record(z.string().max(200), z.unknown());

const releaseFields = z.object({
  ref: z.string().max(250).nullish(),
  url: z.string().max(500).nullish(),
  dateStarted: isoDate.nullish(),
  dateReleased: isoDate.nullish(),
  commits: z.array(commit).max(10_000).optional(),
  refs: z.array(commit).max(1_000).optional(),
});

const newRelease = releaseFields.extend({
  version: z.string().refine(isValidReleaseVersion, "invalid release version"),
  projects: projectNames.optional(),
});

/** A deploy's environment: the one rule of `@sluice/protocol`. */
const environmentName = z.string().refine(isValidEnvironmentName, "invalid environment name");

const newDeploy = z.object({
  environment: environmentName,
  name: z.string().max(64).nullish(),
  url: z.string().max(500).nullish(),
  dateStarted: isoDate.nullish(),
  dateFinished: isoDate.nullish(),
  projects: z.array(z.string().max(200)).max(MAX_NAMED_PROJECTS).optional(),
});

function fieldsOf(body: z.infer<typeof releaseFields>): ReleaseFields {
  const fields: ReleaseFields = {};
  if (body.ref !== undefined) fields.ref = body.ref;
  if (body.url !== undefined) fields.url = body.url;
  if (body.dateStarted !== undefined) fields.dateStarted = body.dateStarted;
  if (body.dateReleased !== undefined) fields.dateReleased = body.dateReleased;
  if (body.commits !== undefined) fields.commits = body.commits;
  else if (body.refs !== undefined) fields.commits = body.refs;
  return fields;
}

async function releaseJson(c: Context<ApiEnv>, organizationId: number, release: Release) {
  const [summary] = await summarizeReleases(c.get("services").db.orm, organizationId, [release]);
  return serializeRelease(summary as NonNullable<typeof summary>);
}

/**
 * Releases and deploys as sentry-cli (`releases new|finalize|list|info|
 * delete|set-commits`, `deploys new|list`) and the bundler plugins call
 * them: organization-scoped and the older project-scoped paths
 * (docs/protocol.md §9.3). Creating an existing release answers 208 with
 * it, as Sentry does.
 */
export function registerReleaseRoutes(api: Hono<ApiEnv>): void {
  api.post("/api/0/organizations/:org/releases", requireScope("project:releases"), async (c) => {
    const { db } = c.get("services");
    const org = await organizationParam(c);
    const body = await readJsonBody(c, newRelease);
    const chosen = await namedProjects(c, org.id, body.projects ?? []);
    if (!chosen || chosen.length === 0) {
      throw new ApiError(400, "projects: at least one project, and only this organization's");
    }
    const { created, release } = await ensureRelease(
      db,
      org.id,
      body.version,
      chosen.map((p) => p.id),
      fieldsOf(body),
    );
    return c.json(await releaseJson(c, org.id, release), created ? 201 : 208);
  });

  api.post(
    "/api/0/projects/:org/:project/releases",
    requireScope("project:releases"),
    async (c) => {
      const { db } = c.get("services");
      const org = await organizationParam(c);
      const project = await projectParam(c);
      const body = await readJsonBody(c, newRelease);
      const { created, release } = await ensureRelease(
        db,
        org.id,
        body.version,
        [project.id],
        fieldsOf(body),
      );
      return c.json(await releaseJson(c, org.id, release), created ? 201 : 208);
    },
  );

  const list = (scoped: boolean) => async (c: Context<ApiEnv>) => {
    const { db } = c.get("services");
    const { org, access } = await organizationAndAccess(c);
    const project = scoped ? await projectParam(c) : null;
    // Without a project in the path, a member sees the releases of its projects.
    const projectIds = project
      ? [project.id]
      : access.projectIds === "all"
        ? null
        : access.projectIds;
    const rows = await pageOf(c, (limit, offset) =>
      listReleases(db.orm, org.id, projectIds, limit, offset),
    );
    return c.json(rows.map(serializeRelease));
  };
  api.get("/api/0/organizations/:org/releases", requireScope("project:read"), list(false));
  api.get("/api/0/projects/:org/:project/releases", requireScope("project:read"), list(true));

  for (const path of [
    "/api/0/organizations/:org/releases/:version",
    "/api/0/projects/:org/:project/releases/:version",
  ]) {
    api.get(path, requireScope("project:read"), async (c) => {
      const { org, release } = await releaseParam(c);
      return c.json(await releaseJson(c, org.id, release));
    });

    api.put(path, requireScope("project:releases"), async (c) => {
      const { org, release } = await releaseParam(c);
      const body = await readJsonBody(c, releaseFields);
      const updated = await updateRelease(c.get("services").db.orm, release.id, fieldsOf(body));
      if (!updated) throw notFound("release");
      return c.json(await releaseJson(c, org.id, updated));
    });

    api.delete(path, requireScope("project:releases"), async (c) => {
      const { release } = await releaseParam(c);
      await deleteRelease(c.get("services").db.orm, release.id);
      return c.body(null, 204);
    });

    api.get(`${path}/commits`, requireScope("project:read"), async (c) => {
      const { release } = await releaseParam(c);
      return c.json(release.commits);
    });
  }

  api.get(
    "/api/0/organizations/:org/releases/:version/previous-with-commits",
    requireScope("project:read"),
    async (c) => {
      await releaseParam(c);
      return c.json({});
    },
  );

  api.get("/api/0/organizations/:org/repos", requireScope("org:read"), async (c) => {
    await organizationParam(c);
    return c.json([]);
  });

  api.get(
    "/api/0/organizations/:org/releases/:version/deploys",
    requireScope("project:read"),
    async (c) => {
      const { release } = await releaseParam(c);
      const rows = await listDeploys(c.get("services").db.orm, release.id);
      return c.json(rows.map(serializeDeploy));
    },
  );

  api.post(
    "/api/0/organizations/:org/releases/:version/deploys",
    requireScope("project:releases"),
    async (c) => {
      const { release } = await releaseParam(c);
      const body = await readJsonBody(c, newDeploy);
      const deploy = await createDeploy(c.get("services").db.orm, release.id, {
        environment: body.environment,
        name: body.name ?? null,
        url: body.url ?? null,
        dateStarted: body.dateStarted ?? null,
        dateFinished: body.dateFinished ?? null,
      });
      return c.json(serializeDeploy(deploy), 201);
    },
  );
}
