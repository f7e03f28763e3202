import {
  type Issue,
  type Organization,
  type Project,
  type StoredEventRow,
  statusDetailsOf,
} from "@sluice/db";
import { describeIssue } from "@sluice/grouping";
import { normalizeEvent } from "@sluice/protocol";
import { z } from "zod";

/**
 * Sentry's JSON shapes (docs/protocol.md §9): ids as strings, ISO times,
 * Sentry's field names. Every response is parsed through its schema before
 * it is sent, so a column that is not in the shape never leaks.
 */

const iso = (d: Date) => d.toISOString();

const organizationJson = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  dateCreated: z.string(),
  isEarlyAdopter: z.boolean(),
  require2FA: z.boolean(),
  requireEmailVerification: z.boolean(),
  status: z.object({ id: z.string(), name: z.string() }),
  features: z.array(z.string()),
  openMembership: z.boolean(),
});

export function serializeOrganization(org: Organization) {
  return organizationJson.parse({
    id: String(org.id),
    slug: org.slug,
    name: org.name,
    dateCreated: iso(org.createdAt),
    isEarlyAdopter: false,
    require2FA: false,
    requireEmailVerification: false,
    status: { id: "active", name: "active" },
    features: [],
    openMembership: org.openMembership,
  });
}

const projectJson = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  platform: z.string().nullable(),
  dateCreated: z.string(),
  status: z.string(),
  isMember: z.boolean(),
  hasAccess: z.boolean(),
  isBookmarked: z.boolean(),
  features: z.array(z.string()),
  team: z.null(),
  teams: z.array(z.never()),
  organization: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
});

export function serializeProject(project: Project, org: Organization) {
  return projectJson.parse({
    id: String(project.id),
    slug: project.slug,
    name: project.name,
    platform: project.platform,
    dateCreated: iso(project.createdAt),
    status: "active",
    isMember: true,
    hasAccess: true,
    isBookmarked: false,
    features: [],
    team: null,
    teams: [],
    organization: { id: String(org.id), slug: org.slug, name: org.name },
  });
}

const issueJson = z.object({
  id: z.string(),
  shortId: z.string(),
  title: z.string(),
  culprit: z.string(),
  permalink: z.string(),
  logger: z.string().nullable(),
  level: z.string(),
  status: z.enum(["unresolved", "resolved", "ignored"]),
  statusDetails: z.record(z.string(), z.unknown()),
  substatus: z.string().nullable(),
  isPublic: z.boolean(),
  platform: z.string(),
  project: z.object({
    id: z.string(),
    name: z.string(),
    slug: z.string(),
    platform: z.string().nullable(),
  }),
  type: z.string(),
  issueType: z.string(),
  issueCategory: z.string(),
  metadata: z.record(z.string(), z.unknown()),
  numComments: z.number(),
  assignedTo: z.null(),
  isBookmarked: z.boolean(),
  isSubscribed: z.boolean(),
  hasSeen: z.boolean(),
  count: z.string(),
  userCount: z.number(),
  firstSeen: z.string(),
  lastSeen: z.string(),
  firstRelease: z.object({ version: z.string() }).nullable(),
  lastRelease: z.object({ version: z.string() }).nullable(),
  annotations: z.array(z.never()),
});

/** Sentry short ids read like `DEFAULT-1A`: the project slug and a base-36 counter. */
function shortId(projectSlug: string, n: number): string {
  return `${projectSlug.toUpperCase()}-${n.toString(36).toUpperCase()}`;
}

export function serializeIssue(issue: Issue, project: Project, orgSlug: string, publicUrl: string) {
  const substatus = { unresolved: "ongoing", ignored: "archived_until_escalating", resolved: null };
  const status = issue.status as "unresolved" | "resolved" | "ignored";
  return issueJson.parse({
    id: String(issue.id),
    shortId: shortId(project.slug, issue.shortId),
    title: issue.title,
    culprit: issue.culprit,
    permalink: `${publicUrl}/organizations/${orgSlug}/issues/${issue.id}/`,
    logger: issue.logger,
    level: issue.level,
    status,
    statusDetails: statusDetailsOf(issue),
    substatus: substatus[status] ?? null,
    isPublic: false,
    platform: issue.platform,
    project: {
      id: String(project.id),
      name: project.name,
      slug: project.slug,
      platform: project.platform,
    },
    type: issue.type,
    issueType: issue.type === "error" ? "error" : "default",
    issueCategory: "error",
    metadata: issue.metadata,
    numComments: 0,
    assignedTo: null,
    isBookmarked: false,
    isSubscribed: false,
    hasSeen: false,
    count: String(issue.timesSeen),
    userCount: issue.userCount,
    firstSeen: iso(issue.firstSeen),
    lastSeen: iso(issue.lastSeen),
    firstRelease: issue.firstRelease ? { version: issue.firstRelease } : null,
    lastRelease: issue.lastRelease ? { version: issue.lastRelease } : null,
    annotations: [],
  });
}

const eventJson = z.object({
  id: z.string(),
  eventID: z.string(),
  groupID: z.string().nullable(),
  projectID: z.string(),
  title: z.string(),
  message: z.string(),
  culprit: z.string(),
  platform: z.string(),
  type: z.string(),
  level: z.string(),
  dateCreated: z.string(),
  dateReceived: z.string(),
  tags: z.array(z.object({ key: z.string(), value: z.string() })),
  user: z.record(z.string(), z.unknown()).nullable(),
  contexts: z.record(z.string(), z.unknown()),
  sdk: z.record(z.string(), z.unknown()).nullable(),
  entries: z.array(z.object({ type: z.string(), data: z.unknown() })),
  context: z.record(z.string(), z.unknown()),
  errors: z.array(z.record(z.string(), z.unknown())),
  fingerprints: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  release: z.object({ version: z.string() }).nullable(),
  environment: z.string().nullable(),
  dist: z.string().nullable(),
});

/** Sentry's event detail JSON, built from the stored payload. */
export function serializeEvent(row: StoredEventRow) {
  const event = normalizeEvent(row.payload, {
    eventId: row.eventId.replaceAll("-", ""),
    timestamp: row.timestamp,
    receivedAt: row.receivedAt,
  });
  const issue = describeIssue(event);
  const tags = [...event.tags];
  const builtIn: [string, string | null][] = [
    ["level", event.level],
    ["environment", event.environment],
    ["release", event.release],
    ["server_name", event.serverName],
    ["transaction", event.transaction],
  ];
  for (const [key, value] of builtIn) {
    if (value && !tags.some(([k]) => k === key)) tags.push([key, value]);
  }
  const entries: { type: string; data: unknown }[] = [];
  if (event.exceptions.length > 0) {
    entries.push({ type: "exception", data: { values: event.exceptions, hasSystemFrames: true } });
  }
  if (event.stacktrace) entries.push({ type: "stacktrace", data: event.stacktrace });
  if (event.threads.length > 0) entries.push({ type: "threads", data: { values: event.threads } });
  if (event.logentry) entries.push({ type: "message", data: event.logentry });
  if (event.breadcrumbs.length > 0)
    entries.push({ type: "breadcrumbs", data: { values: event.breadcrumbs } });
  if (event.request) entries.push({ type: "request", data: event.request });
  const eventId = event.eventId;
  return eventJson.parse({
    id: eventId,
    eventID: eventId,
    groupID: row.issueId === null ? null : String(row.issueId),
    projectID: String(row.projectId),
    title: issue.title,
    message: event.logentry?.formatted ?? event.logentry?.message ?? "",
    culprit: issue.culprit,
    platform: event.platform,
    type: issue.type,
    level: event.level,
    dateCreated: iso(event.timestamp),
    dateReceived: iso(event.receivedAt),
    tags: tags.sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => ({ key, value })),
    user: event.user,
    contexts: event.contexts,
    sdk: event.sdk,
    entries,
    context: event.extra,
    errors: event.errors,
    fingerprints: event.fingerprint ?? ["{{ default }}"],
    metadata: issue.metadata,
    release: event.release ? { version: event.release } : null,
    environment: event.environment,
    dist: event.dist,
  });
}
