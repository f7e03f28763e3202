import { listAuditLogEntries } from "@sluice/db";
import type { Hono } from "hono";
import { z } from "zod";
import type { ApiEnv } from "./api-env.ts";
import { parseInput, storableText } from "./input.ts";
import { organizationAndAccess } from "./lookups.ts";
import { requireScope } from "./require-scope.ts";

const PAGE = 100;
const auditQuery = z.object({
  event: storableText(100).optional(),
  cursor: z
    .string()
    .regex(/^\d{1,16}$/, "cursor must be an entry id")
    .optional(),
});

/**
 * `GET /api/0/organizations/{org}/audit-logs/` in Sentry's shape
 * (OrganizationAuditLogsEndpoint: `{"rows": [...], "options": [...]}`),
 * newest first, 100 a page, `Link` with `cursor` for the next page.
 * Needs org:write, as Sentry's audit log is for managers and owners.
 */
export function registerAuditLogRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/organizations/:org/audit-logs", requireScope("org:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const query = parseInput(auditQuery, c.req.query(), "query");
    const before = query.cursor === undefined ? null : Number(query.cursor);
    const rows = await listAuditLogEntries(
      c.get("services").db.orm,
      org.id,
      PAGE + 1,
      before,
      query.event ?? null,
    );
    const page = rows.slice(0, PAGE);
    const last = page.at(-1);
    const url = new URL(c.req.url);
    url.searchParams.set("cursor", String(last?.id ?? 0));
    c.header(
      "Link",
      `<${url}>; rel="next"; results="${rows.length > PAGE}"; cursor="${last?.id ?? 0}"`,
    );
    return c.json({
      rows: page.map((e) => ({
        id: String(e.id),
        actor: { id: e.actorUserId === null ? null : String(e.actorUserId), name: e.actorLabel },
        event: e.event,
        ipAddress: e.ipAddress,
        note: "",
        targetObject: e.targetObject,
        targetUser: e.targetUserId === null ? null : { id: String(e.targetUserId) },
        data: e.data,
        dateCreated: e.createdAt.toISOString(),
      })),
      options: [
        "member.invite",
        "member.accept",
        "member.add",
        "member.edit",
        "member.remove",
        "orgauthtoken.create",
        "orgauthtoken.remove",
        "user.sign_in",
      ],
    });
  });
}
