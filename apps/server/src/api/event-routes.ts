import { findEvent } from "@sluice/db";
import { normalizeEventId } from "@sluice/protocol";
import type { Context, Hono } from "hono";
import type { ApiEnv } from "./api-env.ts";
import { notFound } from "./api-error.ts";
import { projectParam } from "./lookups.ts";
import { requireScope } from "./require-scope.ts";
import { serializeEvent } from "./serializers.ts";

/** One event of a project, as Sentry's detail JSON or as stored (`/json/`). */
export function registerEventRoutes(api: Hono<ApiEnv>): void {
  api.get(
    "/api/0/projects/:org/:project/events/:eventId",
    requireScope("event:read"),
    async (c) => {
      const row = await eventParam(c);
      return c.json(serializeEvent(row));
    },
  );
  api.get(
    "/api/0/projects/:org/:project/events/:eventId/json",
    requireScope("event:read"),
    async (c) => {
      const row = await eventParam(c);
      return c.json({ ...row.payload, event_id: row.eventId.replaceAll("-", "") });
    },
  );
}

async function eventParam(c: Context<ApiEnv>) {
  const project = await projectParam(c);
  const eventId = normalizeEventId(c.req.param("eventId"));
  const row = eventId ? await findEvent(c.get("services").db.orm, project.id, eventId) : null;
  if (!row) throw notFound("event");
  return row;
}
