import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";
import { describe, expect, it } from "vitest";
import { checkRolesForQueue, parseRoles } from "./roles.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * The files `entry` loads through static imports alone (repository-relative
 * paths), as esbuild resolves them; npm packages are left out.
 */
async function staticallyLoaded(entry: string): Promise<Set<string>> {
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    format: "esm",
    logLevel: "silent",
    plugins: [
      {
        name: "npm-packages-external",
        setup(builder) {
          builder.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@sluice/") ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  const inputs = (metafile as Metafile).inputs;
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const i of inputs[file]?.imports ?? []) {
      if (i.kind === "import-statement" && !i.external) walk(i.path);
    }
  };
  walk(entry);
  return seen;
}

describe("roles", () => {
  it("parses all, single roles and lists", () => {
    expect([...parseRoles("all")]).toEqual(["ingest", "api", "worker", "alerts"]);
    expect([...parseRoles("ingest,api")]).toEqual(["ingest", "api"]);
    expect(() => parseRoles("ingest,reader")).toThrow(/unknown role "reader"/);
  });

  it("needs Redis when ingest and worker run in separate processes", () => {
    expect(checkRolesForQueue(parseRoles("all"), false)).toBeNull();
    expect(checkRolesForQueue(parseRoles("api"), false)).toBeNull();
    expect(checkRolesForQueue(parseRoles("ingest"), false)).toMatch(/^REDIS_URL/);
    expect(checkRolesForQueue(parseRoles("worker"), true)).toBeNull();
  });

  it("loads each role's code only when the process takes that role", async () => {
    const loaded = [...(await staticallyLoaded("apps/server/src/cli.ts"))];
    expect(loaded).toContain("apps/server/src/start-sluice.ts");
    const roleCode = loaded.filter((file) =>
      /^apps\/server\/src\/(ingest|worker|alerts)\/|-module\.ts$|^packages\/(grouping|sourcemaps)\//.test(
        file,
      ),
    );
    expect(roleCode).toEqual([]);
  });
});
