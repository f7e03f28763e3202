import type { Queryable } from "../database.ts";
import { payloadOfRow } from "../event-payload.ts";
import type { StoredEventRow } from "./events.ts";
import type { Issue, IssueStatus } from "./issues.ts";

/**
 * Queries of the web pages (apps/server/src/web). Each reads issues, or the
 * events of one issue (or of a page of issues) through
 * `events_issue_received (issue_id, received_at DESC)`: none reads all
 * events of a project.
 */

/** Sort orders of the issue list, by Sentry's names (`sort=` of the issues page). */
export type IssueSort = "date" | "new" | "freq" | "user";

const SORT_COLUMNS: Record<IssueSort, string> = {
  date: "last_seen",
  new: "first_seen",
  freq: "times_seen",
  user: "user_count",
};

const SORT_CASTS: Record<IssueSort, string> = {
  date: "timestamptz",
  new: "timestamptz",
  freq: "bigint",
  user: "bigint",
};

/** Values a condition must (`include`, any of) or must not (`exclude`, none of) take. */
export type IncludeExclude<T> = { include: T[]; exclude: T[] };

/** Where a page of the issue list starts: after (`next`) or before (`previous`) a row. */
export type IssueCursor = { direction: "next" | "previous"; value: string; id: number };

export type IssueListQuery = {
  projectIds: number[];
  statuses: IncludeExclude<IssueStatus>;
  levels: IncludeExclude<string>;
  /** Matched against the issue's first and last release. */
  releases: IncludeExclude<string>;
  /** `issue_users.user_key` values (`email:...`). */
  userKeys: IncludeExclude<string>;
  /** `has:user` (true) / `!has:user` (false); null: either. */
  hasUser: boolean | null;
  hasRelease: boolean | null;
  /** Each word must occur in the title or culprit (case-insensitive). */
  text: IncludeExclude<string>;
  /**
   * Tag terms (`issue_tag_values`): an issue matches `key:[values]` when one
   * of its events had one of the values; negated, when none did (Sentry's
   * docs: `!user.email:x` is the issues that have not affected x).
   */
  tags?: { key: string; values: string[]; negated: boolean }[];
  /** `has:key` / `!has:key` over the issue's tag keys. */
  hasTags?: IncludeExclude<string>;
  sort: IssueSort;
  cursor: IssueCursor | null;
  limit: number;
};

/** An issue of the list with its sort key as text (exact: microseconds survive). */
export type IssueListRow = Issue & { sortValue: string };

export type IssueListPage = {
  rows: IssueListRow[];
  /** Whether rows exist past the page's last row (`next`) and before its first (`previous`). */
  hasNext: boolean;
  hasPrevious: boolean;
};

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * One page of issues: the filters of `query` over the issues of
 * `projectIds` (a bounded set of issue rows, never events), ordered by the
 * sort column then id, descending, starting at the cursor (keyset
 * pagination: a page costs the same wherever it is). The sort value is
 * read as text so the cursor keeps Postgres's microseconds.
 */
export async function listIssuePage(db: Queryable, query: IssueListQuery): Promise<IssueListPage> {
  if (query.projectIds.length === 0) return { rows: [], hasNext: false, hasPrevious: false };
  const params: unknown[] = [];
  const p = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where = searchConditions(query, p);
  const column = `i.${SORT_COLUMNS[query.sort]}`;
  const backwards = query.cursor?.direction === "previous";
  if (query.cursor) {
    const value = `${p(query.cursor.value)}::${SORT_CASTS[query.sort]}`;
    const id = p(query.cursor.id);
    where.push(
      backwards ? `(${column}, i.id) > (${value}, ${id})` : `(${column}, i.id) < (${value}, ${id})`,
    );
  }
  const order = backwards ? "ASC" : "DESC";
  const limit = p(query.limit + 1);
  const result = await db.query(
    `SELECT i.*, ${column}::text AS sort_value FROM issues i
      WHERE ${where.join(" AND ")}
      ORDER BY ${column} ${order}, i.id ${order} LIMIT ${limit}`,
    params,
  );
  const more = result.rows.length > query.limit;
  const rows = result.rows.slice(0, query.limit).map(issueOfRow);
  if (backwards) rows.reverse();
  return {
    rows,
    hasNext: backwards ? true : more,
    hasPrevious: backwards ? more : query.cursor !== null,
  };
}

/** The filters of an issue search, without sort or page. */
export type IssueSearchQuery = Omit<IssueListQuery, "sort" | "cursor" | "limit">;

/**
 * The API's form of {@link listIssuePage}: the same filters, sorted by
 * `sort` then id, descending, `limit` rows from `offset` (Sentry's API
 * cursors are offsets). Reads issue rows and the tag index, never events.
 * Over several projects, a search of issue columns only (status, level,
 * release, has:user) reads each project's first `offset + limit` issues in
 * index order and merges them, rather than sorting all of their issues
 * (116 ms at 100,000 issues in three projects; bench/RESULTS.md). Searches
 * with tag, text or user terms read their matches once, across projects.
 */
export async function searchIssues(
  db: Queryable,
  query: IssueSearchQuery,
  sort: IssueSort,
  limit: number,
  offset: number,
): Promise<IssueListRow[]> {
  if (query.projectIds.length === 0) return [];
  const params: unknown[] = [];
  const p = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const column = `i.${SORT_COLUMNS[sort]}`;
  const order = `ORDER BY ${column} DESC, i.id DESC`;
  const projectIds = [...new Set(query.projectIds)];
  const termsBeyondIssueColumns =
    (query.tags?.length ?? 0) +
    (query.hasTags?.include.length ?? 0) +
    (query.hasTags?.exclude.length ?? 0) +
    query.text.include.length +
    query.text.exclude.length +
    query.userKeys.include.length +
    query.userKeys.exclude.length;
  if (projectIds.length > 1 && termsBeyondIssueColumns === 0) {
    const ids = p(projectIds);
    const where = searchConditions({ ...query, projectIds }, p, "pr.id");
    const result = await db.query(
      `SELECT i.*, ${column}::text AS sort_value FROM unnest(${ids}::bigint[]) AS pr(id)
        CROSS JOIN LATERAL (SELECT * FROM issues i WHERE ${where.join(" AND ")}
                            ${order} LIMIT ${p(offset + limit)}) i
        ${order} LIMIT ${p(limit)} OFFSET ${p(offset)}`,
      params,
    );
    return result.rows.map(issueOfRow);
  }
  const where = searchConditions({ ...query, projectIds }, p);
  const result = await db.query(
    `SELECT i.*, ${column}::text AS sort_value FROM issues i
      WHERE ${where.join(" AND ")}
      ${order} LIMIT ${p(limit)} OFFSET ${p(offset)}`,
    params,
  );
  return result.rows.map(issueOfRow);
}

/**
 * SQL conditions over `issues i` for a search; `p` binds a parameter and
 * names it. `projectColumn` names the one project to match (a lateral
 * join's column) instead of binding `query.projectIds`.
 */
function searchConditions(
  query: IssueSearchQuery,
  p: (value: unknown) => string,
  projectColumn?: string,
): string[] {
  // One value is bound with `=`, not `= ANY(array)`: before Postgres 17 an array
  // condition on an index column keeps the index from returning rows in order, so
  // the default list (one project, unresolved, by last seen) sorted all of the
  // project's unresolved issues instead of reading one page of an index on
  // (project_id, last_seen) (bench/RESULTS.md, the API at 10 million events).
  const oneOf = (column: string, values: unknown[], type: string) =>
    values.length === 1
      ? `${column} = ${p(values[0])}::${type}`
      : `${column} = ANY(${p(values)}::${type}[])`;
  const where: string[] = [
    projectColumn
      ? `i.project_id = ${projectColumn}`
      : oneOf("i.project_id", query.projectIds, "bigint"),
    "i.merged_into_id IS NULL",
  ];
  const inOut = (column: string, values: IncludeExclude<string>) => {
    if (values.include.length > 0) where.push(oneOf(column, values.include, "text"));
    if (values.exclude.length > 0)
      where.push(`NOT (${column} = ANY(${p(values.exclude)}::text[]))`);
  };
  inOut("i.status", query.statuses);
  inOut("i.level", query.levels);
  if (query.releases.include.length > 0) {
    const r = p(query.releases.include);
    where.push(`(i.first_release = ANY(${r}::text[]) OR i.last_release = ANY(${r}::text[]))`);
  }
  if (query.releases.exclude.length > 0) {
    const r = p(query.releases.exclude);
    where.push(
      `NOT (COALESCE(i.first_release = ANY(${r}::text[]), false) OR COALESCE(i.last_release = ANY(${r}::text[]), false))`,
    );
  }
  for (const key of query.userKeys.include) {
    where.push(
      `EXISTS (SELECT 1 FROM issue_users u WHERE u.issue_id = i.id AND u.user_key = ${p(key)})`,
    );
  }
  for (const key of query.userKeys.exclude) {
    where.push(
      `NOT EXISTS (SELECT 1 FROM issue_users u WHERE u.issue_id = i.id AND u.user_key = ${p(key)})`,
    );
  }
  if (query.hasUser !== null) where.push(query.hasUser ? "i.user_count > 0" : "i.user_count = 0");
  if (query.hasRelease !== null)
    where.push(query.hasRelease ? "i.last_release IS NOT NULL" : "i.last_release IS NULL");
  // The project ids are bound again (not `t.project_id = i.project_id`) so that
  // issue_tag_values_lookup (project_id, key, value, issue_id) answers each term
  // with an index-only scan; a join condition made the planner scan the table.
  let projects = "";
  const tagMatch = (key: string, values: string[] | null) => {
    projects ||= `${p(query.projectIds)}::bigint[]`;
    return `i.id IN (SELECT t.issue_id FROM issue_tag_values t
       WHERE t.project_id = ANY(${projects}) AND t.key = ${p(key)}${
         values === null ? "" : ` AND t.value = ANY(${p(values)}::text[])`
       })`;
  };
  for (const tag of query.tags ?? []) {
    const match = tagMatch(tag.key, tag.values);
    where.push(tag.negated ? `NOT (${match})` : match);
  }
  for (const key of query.hasTags?.include ?? []) where.push(tagMatch(key, null));
  for (const key of query.hasTags?.exclude ?? []) where.push(`NOT (${tagMatch(key, null)})`);
  for (const word of query.text.include) {
    const like = p(`%${escapeLike(word)}%`);
    where.push(`(i.title ILIKE ${like} OR i.culprit ILIKE ${like})`);
  }
  for (const word of query.text.exclude) {
    const like = p(`%${escapeLike(word)}%`);
    where.push(`NOT (i.title ILIKE ${like} OR i.culprit ILIKE ${like})`);
  }
  return where;
}

function issueOfRow(r: Record<string, unknown>): IssueListRow {
  return {
    id: Number(r.id),
    projectId: Number(r.project_id),
    shortId: Number(r.short_id),
    type: r.type as string,
    title: r.title as string,
    culprit: r.culprit as string,
    level: r.level as string,
    platform: r.platform as string,
    logger: (r.logger as string | null) ?? null,
    metadata: r.metadata as Record<string, unknown>,
    status: r.status as string,
    firstSeen: r.first_seen as Date,
    lastSeen: r.last_seen as Date,
    timesSeen: Number(r.times_seen),
    userCount: Number(r.user_count),
    firstRelease: (r.first_release as string | null) ?? null,
    lastRelease: (r.last_release as string | null) ?? null,
    resolvedAt: (r.resolved_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
    mergedIntoId:
      r.merged_into_id === null || r.merged_into_id === undefined ? null : Number(r.merged_into_id),
    resolutionType: (r.resolution_type as string | null) ?? null,
    resolutionRelease: (r.resolution_release as string | null) ?? null,
    sortValue: r.sort_value as string,
  } as IssueListRow;
}

/**
 * Events per hour of each issue over the 24 hours ending at `now`: 24
 * counts per issue, oldest hour first (bucket 23 holds the last hour).
 * Reads the index entries of those issues' last day only; a very busy issue
 * costs as many entries as it had events that day (an hourly counts table
 * would make this constant).
 */
export async function hourlyEventCounts(
  db: Queryable,
  issueIds: number[],
  now: Date,
): Promise<Map<number, number[]>> {
  const counts = new Map<number, number[]>(issueIds.map((id) => [id, new Array(24).fill(0)]));
  if (issueIds.length === 0) return counts;
  const since = new Date(now.getTime() - 24 * 3_600_000);
  const result = await db.query(
    `SELECT issue_id, floor(extract(epoch FROM (received_at - $2::timestamptz)) / 3600)::int AS bucket,
            count(*)::int AS n
       FROM events WHERE issue_id = ANY($1::bigint[]) AND received_at > $2 AND received_at <= $3
      GROUP BY 1, 2`,
    [issueIds, since, now],
  );
  for (const r of result.rows) {
    const row = counts.get(Number(r.issue_id));
    const bucket = Math.min(23, Math.max(0, Number(r.bucket)));
    if (row) row[bucket] = (row[bucket] ?? 0) + Number(r.n);
  }
  return counts;
}

/** Environments the projects' releases were seen in (`release_environments`), at most `limit`. */
export async function listProjectEnvironments(
  db: Queryable,
  projectIds: number[],
  limit: number,
): Promise<string[]> {
  if (projectIds.length === 0) return [];
  const result = await db.query(
    `SELECT DISTINCT environment FROM release_environments
      WHERE project_id = ANY($1::bigint[]) ORDER BY environment LIMIT $2`,
    [projectIds, limit],
  );
  return result.rows.map((r) => r.environment as string);
}

function eventOfRow(r: Record<string, unknown>): StoredEventRow {
  let payload: Record<string, unknown>;
  try {
    payload = payloadOfRow({
      payload: r.payload as Record<string, unknown> | null,
      payloadCompressed: (r.payload_compressed as Buffer | null) ?? null,
    });
  } catch {
    payload = {
      errors: [
        { type: "invalid_data", name: "payload", reason: "the stored payload cannot be read" },
      ],
    };
  }
  return {
    projectId: Number(r.project_id),
    eventId: (r.event_id as string).replaceAll("-", ""),
    receivedAt: r.received_at as Date,
    timestamp: r.timestamp as Date,
    keyId: r.key_id === null ? null : Number(r.key_id),
    issueId: r.issue_id === null ? null : Number(r.issue_id),
    processedAt: (r.processed_at as Date | null) ?? null,
    primaryHash: (r.primary_hash as string | null) ?? null,
    payload,
  };
}

const EVENT_COLUMNS =
  "project_id, event_id::text AS event_id, received_at, timestamp, key_id, issue_id, processed_at, primary_hash, payload, payload_compressed";

/** Which event of an issue to read, relative to one event (`older`, `newer`) or absolute. */
export type EventPosition =
  | { which: "latest" | "oldest" }
  | { which: "older" | "newer"; projectId: number; eventId: string };

/** The (received_at, event_id) key of an event, read exactly from `event_ids` (same value as `events`). */
const EVENT_KEY = (project: string, event: string) =>
  `((SELECT k.received_at FROM event_ids k WHERE k.project_id = ${project} AND k.event_id = ${event}::uuid), ${event}::uuid)`;

/**
 * One event of an issue: its latest or oldest, or the one just older or
 * newer than a given event (by received time, then event id). One index
 * probe on `events_issue_received`. Null when there is none.
 */
export async function findIssueEvent(
  db: Queryable,
  issueId: number,
  position: EventPosition,
): Promise<StoredEventRow | null> {
  let where = "issue_id = $1";
  let order = "DESC";
  const params: unknown[] = [issueId];
  if (position.which === "oldest") order = "ASC";
  if (position.which === "older" || position.which === "newer") {
    const op = position.which === "older" ? "<" : ">";
    order = position.which === "older" ? "DESC" : "ASC";
    params.push(position.projectId, position.eventId);
    where += ` AND (received_at, event_id) ${op} ${EVENT_KEY("$2", "$3")}`;
  }
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where}
      ORDER BY received_at ${order}, event_id ${order} LIMIT 1`,
    params,
  );
  return result.rows[0] ? eventOfRow(result.rows[0]) : null;
}

/** The latest `limit` events of an issue (newest first), starting before `before` when given. */
export async function listLatestIssueEvents(
  db: Queryable,
  issueId: number,
  limit: number,
  before: { projectId: number; eventId: string } | null,
): Promise<StoredEventRow[]> {
  const params: unknown[] = [issueId, limit];
  let where = "issue_id = $1";
  if (before) {
    params.push(before.projectId, before.eventId);
    where += ` AND (received_at, event_id) < ${EVENT_KEY("$3", "$4")}`;
  }
  const result = await db.query(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where}
      ORDER BY received_at DESC, event_id DESC LIMIT $2`,
    params,
  );
  return result.rows.map(eventOfRow);
}

/** Issues first seen in `version` in the given projects, most events first, at most `limit`. */
export async function listNewIssuesOfRelease(
  db: Queryable,
  projectIds: number[],
  version: string,
  limit: number,
): Promise<Issue[]> {
  if (projectIds.length === 0) return [];
  const result = await db.query(
    `SELECT i.*, i.last_seen::text AS sort_value FROM issues i
      WHERE i.project_id = ANY($1::bigint[]) AND i.first_release = $2
      ORDER BY i.times_seen DESC, i.id DESC LIMIT $3`,
    [projectIds, version, limit],
  );
  return result.rows.map(issueOfRow);
}

/** A file uploaded for a release (legacy release file or from an artifact bundle). */
export type ReleaseArtifact = {
  url: string;
  dist: string;
  type: string;
  size: number;
  fromBundle: boolean;
  createdAt: Date;
};

/** Files of a release (`artifacts_release_url`), by URL, at most `limit`. */
export async function listReleaseArtifacts(
  db: Queryable,
  organizationId: number,
  version: string,
  limit: number,
): Promise<ReleaseArtifact[]> {
  const result = await db.query(
    `SELECT url, dist, type, size, bundle_id, created_at FROM artifacts
      WHERE organization_id = $1 AND release = $2 ORDER BY url, id LIMIT $3`,
    [organizationId, version, limit],
  );
  return result.rows.map((r) => ({
    url: r.url as string,
    dist: r.dist as string,
    type: r.type as string,
    size: Number(r.size),
    fromBundle: r.bundle_id !== null,
    createdAt: r.created_at as Date,
  }));
}
