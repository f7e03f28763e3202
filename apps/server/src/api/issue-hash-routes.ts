import { findIssueEvents, listIssueHashes } from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { unmergeIssueHashes } from "../issue-merging.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";
import { parseInput } from "./input.ts";
import { issueParam } from "./lookups.ts";
import { pageOf } from "./pagination.ts";
import { requireScope } from "./require-scope.ts";
import { serializeEvent } from "./serializers.ts";

/** Most hashes one unmerge moves; an issue rarely owns more than a handful. */
const MAX_UNMERGE_HASHES = 100;

/** A group hash as the query string names it: Sluice's are 32 hex digits; bounded either way. */
const hashParam = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[0-9A-Za-z_-]+$/, "must be a group hash");

/**
 * An issue's hashes and unmerge (Sentry's GroupHashesEndpoint,
 * src/sentry/issues/endpoints/group_hashes.py), under `/api/0/issues/{id}/`
 * and `/api/0/organizations/{org}/issues/{id}/`:
 * - `GET …/hashes/`: `[{"id": hash, "latestEvent": event | null}]`, the
 *   latest event first; paginated.
 * - `PUT …/hashes/?id=<hash>&id=…`: moves those hashes, and the events
 *   whose primary hash they are, to one new issue; later events of those
 *   hashes group there. 202 with no body as Sentry (which unmerges in a
 *   task; Sluice has finished when it answers); 200 without ids; 409 when
 *   the issue owns none of them (Sentry's "Already being unmerged").
 */
export function registerIssueHashRoutes(api: Hono<ApiEnv>): void {
  for (const prefix of ["/api/0/issues/:issueId", "/api/0/organizations/:org/issues/:issueId"]) {
    api.get(`${prefix}/hashes`, requireScope("event:read"), async (c) => {
      const { issue } = await issueParam(c);
      const { db } = c.get("services");
      const hashes = await pageOf(c, (limit, offset) =>
        listIssueHashes(db.pool, issue.id, limit, offset),
      );
      const ids = hashes.flatMap((h) => (h.latestEvent ? [h.latestEvent.eventId] : []));
      const events = new Map(
        (await findIssueEvents(db.orm, issue.id, ids)).map((e) => [
          e.eventId.replaceAll("-", ""),
          e,
        ]),
      );
      return c.json(
        hashes.map((h) => {
          const event = h.latestEvent ? events.get(h.latestEvent.eventId) : undefined;
          return { id: h.hash, latestEvent: event ? serializeEvent(event) : null };
        }),
      );
    });

    api.put(`${prefix}/hashes`, requireScope("event:write"), (c) => unmerge(c));
  }
}

async function unmerge(c: Context<ApiEnv>): Promise<Response> {
  const { issue } = await issueParam(c);
  const raw = c.req.queries("id") ?? [];
  if (raw.length === 0) return c.body(null, 200);
  if (raw.length > MAX_UNMERGE_HASHES) {
    throw new ApiError(400, `Too many ids: at most ${MAX_UNMERGE_HASHES} hashes per unmerge.`);
  }
  const hashes = [...new Set(raw.map((h) => parseInput(hashParam, h, "id")))];
  const { db } = c.get("services");
  const result = await unmergeIssueHashes(db, issue, hashes);
  if (result === "no-such-hash") throw new ApiError(409, "Already being unmerged");
  if (result === "issue-merged") throw new ApiError(409, "The issue was merged meanwhile.");
  return c.body(null, 202);
}
