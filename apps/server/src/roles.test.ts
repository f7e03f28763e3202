import { describe, expect, it } from "vitest";
import { checkRolesForQueue, parseRoles } from "./roles.ts";

describe("roles", () => {
  it("parses all, single roles and lists", () => {
    expect([...parseRoles("all")]).toEqual(["ingest", "api", "worker"]);
    expect([...parseRoles("ingest,api")]).toEqual(["ingest", "api"]);
    expect(() => parseRoles("ingest,reader")).toThrow(/unknown role "reader"/);
  });

  it("needs Redis when ingest and worker run in separate processes", () => {
    expect(checkRolesForQueue(parseRoles("all"), false)).toBeNull();
    expect(checkRolesForQueue(parseRoles("api"), false)).toBeNull();
    expect(checkRolesForQueue(parseRoles("ingest"), false)).toMatch(/^REDIS_URL/);
    expect(checkRolesForQueue(parseRoles("worker"), true)).toBeNull();
  });
});
