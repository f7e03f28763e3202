import type { Artifact, Deploy, ReleaseSummary } from "@sluice/db";
import { z } from "zod";

const iso = (d: Date | null) => (d ? d.toISOString() : null);

const releaseJson = z.object({
  id: z.string(),
  version: z.string(),
  shortVersion: z.string(),
  status: z.literal("open"),
  ref: z.string().nullable(),
  url: z.string().nullable(),
  dateCreated: z.string(),
  dateReleased: z.string().nullable(),
  dateStarted: z.string().nullable(),
  data: z.object({}),
  newGroups: z.number(),
  owner: z.null(),
  commitCount: z.number(),
  lastCommit: z.record(z.string(), z.unknown()).nullable(),
  deployCount: z.number(),
  lastDeploy: z.record(z.string(), z.unknown()).nullable(),
  authors: z.array(z.never()),
  firstEvent: z.string().nullable(),
  lastEvent: z.string().nullable(),
  projects: z.array(
    z.object({
      id: z.string(),
      slug: z.string(),
      name: z.string(),
      platform: z.string().nullable(),
      platforms: z.array(z.string()),
      newGroups: z.number(),
      hasHealthData: z.boolean(),
    }),
  ),
});

/**
 * Sentry's release JSON (OrganizationReleaseSerializer, the fields its API
 * schema requires; sentry-cli's `ReleaseInfo` reads `version`,
 * `dateCreated`, `dateReleased`, `lastEvent`, `newGroups`, `projects`).
 */
export function serializeRelease(release: ReleaseSummary) {
  const last = release.commits[0] ?? null;
  return releaseJson.parse({
    id: String(release.id),
    version: release.version,
    shortVersion: release.version,
    status: "open",
    ref: release.ref,
    url: release.url,
    dateCreated: release.createdAt.toISOString(),
    dateReleased: iso(release.dateReleased),
    dateStarted: iso(release.dateStarted),
    data: {},
    newGroups: release.newGroups,
    owner: null,
    commitCount: release.commits.length,
    lastCommit: last,
    deployCount: release.deployCount,
    lastDeploy: release.lastDeploy ? serializeDeploy(release.lastDeploy) : null,
    authors: [],
    firstEvent: iso(release.firstEvent),
    lastEvent: iso(release.lastEvent),
    projects: release.projects.map((p) => ({
      id: String(p.id),
      slug: p.slug,
      name: p.name,
      platform: p.platform,
      platforms: p.platform ? [p.platform] : [],
      newGroups: p.newGroups,
      hasHealthData: false,
    })),
  });
}

const deployJson = z.object({
  id: z.string(),
  environment: z.string(),
  name: z.string().nullable(),
  url: z.string().nullable(),
  dateStarted: z.string().nullable(),
  dateFinished: z.string(),
});

/** Sentry's deploy JSON (DeploySerializer). */
export function serializeDeploy(deploy: Deploy) {
  return deployJson.parse({
    id: String(deploy.id),
    environment: deploy.environment,
    name: deploy.name,
    url: deploy.url,
    dateStarted: iso(deploy.dateStarted),
    dateFinished: deploy.dateFinished.toISOString(),
  });
}

const releaseFileJson = z.object({
  id: z.string(),
  name: z.string(),
  dist: z.string().nullable(),
  sha1: z.string(),
  size: z.number(),
  headers: z.record(z.string(), z.string()),
  dateCreated: z.string(),
});

/**
 * A legacy release file (ReleaseFileSerializer; sentry-cli reads `id`,
 * `sha1`, `name`, `size`, `dist`, `headers`). Header names are shown in
 * Sentry's capitalization (`Sourcemap`).
 */
export function serializeReleaseFile(file: Artifact) {
  return releaseFileJson.parse({
    id: String(file.id),
    name: file.url,
    dist: file.dist === "" ? null : file.dist,
    sha1: file.sha1,
    size: file.size,
    headers: Object.fromEntries(
      Object.entries(file.headers).map(([k, v]) => [
        k.replace(/(^|-)([a-z])/g, (_, dash, ch: string) => dash + ch.toUpperCase()),
        v,
      ]),
    ),
    dateCreated: file.createdAt.toISOString(),
  });
}
