import { type ApiToken, createApiToken, listApiTokens, revokeApiToken } from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { audit } from "../accounts/audit.ts";
import {
  hashApiToken,
  newApiToken,
  newOrganizationToken,
  ORGANIZATION_TOKEN_SCOPES,
} from "../accounts/auth-tokens.ts";
import { ALL_SCOPES } from "../accounts/roles.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { storableText } from "./input.ts";
import { idParam, organizationAndAccess } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { requireScope } from "./require-scope.ts";

const userTokenCreate = z.object({
  name: storableText(255).optional(),
  scopes: z
    .array(z.string().max(50))
    .min(1, "Select at least one scope.")
    .max(100)
    .refine((s) => s.every((x) => ALL_SCOPES.has(x)), "unknown scope"),
});
const userTokenDelete = z.object({ tokenId: z.union([z.string().max(20), z.number()]) });
const orgTokenCreate = z.object({ name: storableText(255).min(1, "The name is required.") });

/** Sentry's ApiToken shape; `token` only in the answer that created it. */
function serializeToken(row: ApiToken, token: string | null = null) {
  return {
    id: String(row.id),
    name: row.label,
    scopes: row.scopes,
    dateCreated: row.createdAt.toISOString(),
    dateLastUsed: row.lastUsedAt?.toISOString() ?? null,
    tokenLastCharacters: row.tokenLastCharacters,
    expiresAt: null,
    ...(token ? { token } : {}),
  };
}

/** The signed-in user (a session, not a token), as Sentry's ApiTokensEndpoint requires. */
function sessionUser(c: Context<ApiEnv>) {
  const { caller } = c.get("access");
  if (caller.kind !== "user" || caller.session === null)
    throw new ApiError(403, "User auth tokens are managed from a signed-in session.");
  return caller.user;
}

/**
 * User auth tokens (`/api/0/api-tokens/`) and organization auth tokens
 * (`/api/0/organizations/{org}/org-auth-tokens/`), as Sentry has them.
 */
export function registerTokenRoutes(api: Hono<ApiEnv>): void {
  api.get("/api/0/api-tokens", async (c) => {
    const user = sessionUser(c);
    const rows = await listApiTokens(c.get("services").db.orm, { userId: user.id });
    return c.json(rows.map((r) => serializeToken(r)));
  });

  api.post("/api/0/api-tokens", async (c) => {
    const user = sessionUser(c);
    const body = await readJsonBody(c, userTokenCreate);
    const token = newApiToken();
    const row = await createApiToken(
      c.get("services").db.orm,
      hashApiToken(token),
      body.scopes,
      body.name ?? null,
      {
        userId: user.id,
        tokenLastCharacters: token.slice(-4),
      },
    );
    return c.json(serializeToken(row, token), 201);
  });

  api.delete("/api/0/api-tokens", async (c) => {
    const user = sessionUser(c);
    const body = await readJsonBody(c, userTokenDelete);
    const id = Number(body.tokenId);
    if (
      !Number.isSafeInteger(id) ||
      !(await revokeApiToken(c.get("services").db.orm, id, { userId: user.id }))
    )
      throw notFound("token");
    return c.body(null, 204);
  });

  const base = "/api/0/organizations/:org/org-auth-tokens";
  api.get(base, requireScope("org:read"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const rows = await listApiTokens(c.get("services").db.orm, { organizationId: org.id });
    return c.json(rows.map((r) => serializeToken(r)));
  });

  api.post(base, requireScope("org:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const services = c.get("services");
    const body = await readJsonBody(c, orgTokenCreate);
    const token = newOrganizationToken(org.slug, services.config.publicUrl);
    const row = await createApiToken(
      services.db.orm,
      hashApiToken(token),
      ORGANIZATION_TOKEN_SCOPES,
      body.name,
      {
        organizationId: org.id,
        tokenLastCharacters: token.slice(-4),
      },
    );
    await audit(services, {
      organizationId: org.id,
      caller: c.get("access").caller,
      event: "orgauthtoken.create",
      targetObject: row.id,
      data: { name: body.name },
    });
    return c.json(serializeToken(row, token), 201);
  });

  api.delete(`${base}/:tokenId`, requireScope("org:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const services = c.get("services");
    const id = idParam(c, "tokenId");
    if (id === null || !(await revokeApiToken(services.db.orm, id, { organizationId: org.id })))
      throw notFound("token");
    await audit(services, {
      organizationId: org.id,
      caller: c.get("access").caller,
      event: "orgauthtoken.remove",
      targetObject: id,
    });
    return c.body(null, 204);
  });
}
