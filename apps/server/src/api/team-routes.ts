import {
  addProjectTeam,
  addTeamMember,
  ensureTeam,
  findMember,
  findOrganizationById,
  findTeam,
  listTeams,
  type Organization,
  removeProjectTeam,
  removeTeamMember,
  setOpenMembership,
  type Team,
} from "@sluice/db";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { audit } from "../accounts/audit.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError, notFound } from "./api-error.ts";
import { storableText } from "./input.ts";
import { idParam, organizationAndAccess, projectParam } from "./lookups.ts";
import { readJsonBody } from "./read-json-body.ts";
import { forbidden, requireScope } from "./require-scope.ts";
import { serializeOrganization, serializeProject } from "./serializers.ts";

const slug = z
  .string()
  .min(1)
  .max(50)
  .regex(
    /^[a-z0-9_-]+$/,
    "Enter a valid slug consisting of lowercase letters, numbers, underscores or hyphens.",
  );
const teamCreate = z.object({ slug: slug.optional(), name: storableText(64).min(1).optional() });
const organizationUpdate = z.object({
  name: storableText(64).min(1).optional(),
  openMembership: z.boolean().optional(),
});

function serializeTeam(team: Team) {
  return {
    id: String(team.id),
    slug: team.slug,
    name: team.name,
    dateCreated: team.createdAt.toISOString(),
    hasAccess: true,
  };
}

async function teamParam(c: Context<ApiEnv>, org: Organization): Promise<Team> {
  const team = await findTeam(c.get("services").db.orm, org.id, c.req.param("team") ?? "");
  if (!team) throw notFound("team");
  return team;
}

/**
 * Teams, as far as access needs them (Sentry's team endpoints): a member
 * who is neither manager nor owner sees the projects of its teams, unless
 * the organization has Open Membership (`PUT /api/0/organizations/{org}/`
 * with `openMembership`).
 */
export function registerTeamRoutes(api: Hono<ApiEnv>): void {
  api.put("/api/0/organizations/:org", requireScope("org:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const services = c.get("services");
    const body = await readJsonBody(c, organizationUpdate);
    if (body.openMembership !== undefined && body.openMembership !== org.openMembership) {
      await setOpenMembership(services.db.orm, org.id, body.openMembership);
      await audit(services, {
        organizationId: org.id,
        caller: c.get("access").caller,
        event: "org.edit",
        targetObject: org.id,
        data: { openMembership: body.openMembership },
      });
    }
    if (body.name !== undefined && body.name !== org.name)
      throw new ApiError(400, "Renaming an organization is not supported yet.");
    return c.json(
      serializeOrganization((await findOrganizationById(services.db.orm, org.id)) ?? org),
    );
  });

  api.get("/api/0/organizations/:org/teams", requireScope("team:read"), async (c) => {
    const { org } = await organizationAndAccess(c);
    return c.json((await listTeams(c.get("services").db.orm, org.id)).map(serializeTeam));
  });

  api.post("/api/0/organizations/:org/teams", requireScope("team:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const body = await readJsonBody(c, teamCreate);
    const teamSlug =
      body.slug ??
      body.name
        ?.toLowerCase()
        .replace(/[^a-z0-9_-]+/g, "-")
        .slice(0, 50);
    if (!teamSlug) throw new ApiError(400, "slug: A team needs a slug or a name.");
    const { orm } = c.get("services").db;
    if (await findTeam(orm, org.id, teamSlug))
      throw new ApiError(409, "A team with this slug already exists.");
    return c.json(
      serializeTeam(await ensureTeam(orm, org.id, teamSlug, body.name ?? teamSlug)),
      201,
    );
  });

  const projectTeam = "/api/0/projects/:org/:project/teams/:team";
  api.post(projectTeam, requireScope("project:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const project = await projectParam(c);
    const team = await teamParam(c, org);
    await addProjectTeam(c.get("services").db.orm, project.id, team.id);
    return c.json(serializeProject(project, org), 201);
  });
  api.delete(projectTeam, requireScope("project:write"), async (c) => {
    const { org } = await organizationAndAccess(c);
    const project = await projectParam(c);
    const team = await teamParam(c, org);
    await removeProjectTeam(c.get("services").db.orm, project.id, team.id);
    return c.json(serializeProject(project, org));
  });

  // Joining a team: team:write for anyone's membership; a member may join
  // itself only under Open Membership (Sentry's rule).
  const memberTeam = "/api/0/organizations/:org/members/:memberId/teams/:team";
  for (const method of ["post", "delete"] as const) {
    api[method](memberTeam, requireScope("member:read"), async (c) => {
      const { org, access } = await organizationAndAccess(c);
      const raw = c.req.param("memberId");
      const memberId = raw === "me" ? access.memberId : idParam(c, "memberId");
      const member =
        memberId === null ? null : await findMember(c.get("services").db.orm, org.id, memberId);
      if (!member) throw notFound("member");
      const self = access.memberId === member.id;
      if (
        !access.scopes.has("team:write") &&
        !(self && (org.openMembership || method === "delete"))
      )
        throw forbidden("team:write");
      const team = await teamParam(c, org);
      const { orm } = c.get("services").db;
      if (method === "post") await addTeamMember(orm, team.id, member.id);
      else await removeTeamMember(orm, team.id, member.id);
      return c.json(serializeTeam(team), method === "post" ? 201 : 200);
    });
  }
}
