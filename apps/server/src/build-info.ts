import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Which code this process runs: what it registers in `sluice_nodes` and exports as `sluice_build_info`. */
export type BuildInfo = {
  /**
   * The release of `releases.json` cut from this commit; otherwise the next
   * minor release with `-dev` (the code on its way to it, e.g. `0.4.0-dev`
   * after 0.3.0), which the version gate orders before that release.
   */
  release: string;
  /** The git commit (40 hex digits), or null when neither the bundle nor a checkout says. */
  commit: string | null;
};

/** Stamped into the bundle by scripts/build.ts (esbuild `define`); absent when running the sources. */
declare const __SLUICE_BUILD__: BuildInfo | undefined;
declare const __SLUICE_RELEASES__: CutRelease[] | undefined;

/** One entry of `releases.json`. */
export type CutRelease = { version: string; commit: string; lastMigration: number };

let cached: BuildInfo | undefined;

/**
 * This code's release and commit: stamped by `npm run build` into the
 * bundle; from the sources, the checkout's HEAD (one `git rev-parse` at
 * start) and `releases.json`.
 */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  if (typeof __SLUICE_BUILD__ !== "undefined") {
    cached = __SLUICE_BUILD__;
    return cached;
  }
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  let commit: string | null = null;
  try {
    const head = execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    commit = /^[0-9a-f]{40}$/.test(head) ? head : null;
  } catch {
    commit = null;
  }
  cached = { release: releaseOf(commit, knownReleases()), commit };
  return cached;
}

/**
 * What `npm run build` stamps into the bundle: `buildInfo()`, or, when no
 * checkout says which commit this is (a Docker build: `.dockerignore`
 * leaves `.git` out), `fallbackCommit`, the build's `SLUICE_COMMIT`
 * (`docker build --build-arg SLUICE_COMMIT=$(git rev-parse HEAD) .`), with
 * the release cut from it. Throws when that is set but not 40 hex digits,
 * so a short or wrong id never reaches the registry.
 */
export function bundleBuildInfo(
  fallbackCommit: string | undefined,
  own: BuildInfo = buildInfo(),
  releases: CutRelease[] = knownReleases(),
): BuildInfo {
  const given = fallbackCommit?.trim().toLowerCase() ?? "";
  if (given !== "" && !/^[0-9a-f]{40}$/.test(given))
    throw new Error(`SLUICE_COMMIT must be a full commit id (git rev-parse HEAD), not ${given}`);
  if (own.commit !== null || given === "") return own;
  return { release: releaseOf(given, releases), commit: given };
}

/** The releases this code knows (`releases.json`, stamped into the bundle), oldest first. */
export function knownReleases(): CutRelease[] {
  if (typeof __SLUICE_RELEASES__ !== "undefined") return __SLUICE_RELEASES__;
  return readReleaseList(fileURLToPath(new URL("../../../releases.json", import.meta.url)));
}

/** The releases of a `releases.json`, oldest first; empty when there is none. */
function readReleaseList(path: string): CutRelease[] {
  if (!existsSync(path)) return [];
  return (JSON.parse(readFileSync(path, "utf8")) as { releases: CutRelease[] }).releases;
}

/** See `BuildInfo.release`. */
export function releaseOf(
  commit: string | null,
  releases: { version: string; commit: string }[],
): string {
  const cut = releases.find((r) => r.commit === commit);
  if (cut) return cut.version;
  const last = releases.at(-1);
  if (!last) return "0.1.0-dev";
  const [major, minor] = last.version.split(".").map(Number);
  return `${major}.${(minor ?? 0) + 1}.0-dev`;
}
