/**
 * `npm run build`: bundles the `sluice` command into one ES module,
 * `apps/server/dist/sluice.mjs`, for deployments (the Docker image and the
 * benchmark run it). Sluice's own packages are bundled; every npm package
 * stays an import resolved from node_modules at run time. Without tsx's
 * loader thread, a process needs about 45 MiB less memory (bench/RESULTS.md).
 * Development needs no build: `npx sluice` runs the sources through tsx.
 */
import { build } from "esbuild";
import { bundleBuildInfo, knownReleases } from "../apps/server/src/build-info.ts";

const root = new URL("../", import.meta.url).pathname;

await build({
  entryPoints: [`${root}apps/server/src/cli.ts`],
  outfile: `${root}apps/server/dist/sluice.mjs`,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // The release and commit every node registers and exports (sluice_build_info),
  // and releases.json, which the image does not carry. SLUICE_COMMIT names the
  // commit where there is no .git (the Dockerfile's build argument).
  define: {
    __SLUICE_BUILD__: JSON.stringify(bundleBuildInfo(process.env.SLUICE_COMMIT)),
    __SLUICE_RELEASES__: JSON.stringify(knownReleases()),
  },
  // CommonJS packages that call require() need it inside an ES module.
  banner: {
    js: "import { createRequire as sluiceCreateRequire } from 'node:module'; const require = sluiceCreateRequire(import.meta.url);",
  },
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
console.log("built apps/server/dist/sluice.mjs");
