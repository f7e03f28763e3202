import { readFileSync } from "node:fs";
import { z } from "zod";

/** One cut release: its version, the commit it was cut from, and the last migration it shipped. */
const releaseShape = z.object({
  version: z.string().regex(/^\d+\.\d+\.\d+$/),
  commit: z.string().regex(/^[0-9a-f]{40}$/),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  lastMigration: z.number().int().nonnegative(),
});

export type Release = z.infer<typeof releaseShape>;

const releasesFile = z.object({ releases: z.array(releaseShape) });

/** Reads `releases.json` (oldest first); throws naming the file when it is malformed. */
export function readReleases(path: string): Release[] {
  const parsed = releasesFile.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!parsed.success)
    throw new Error(`${path}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data.releases;
}

/**
 * The index (in `releases`) of the release that ships migration `version`:
 * the first release whose `lastMigration` reaches it, or `releases.length`
 * for the release not cut yet.
 */
export function releaseIndexOf(version: number, releases: Release[]): number {
  const index = releases.findIndex((r) => version <= r.lastMigration);
  return index < 0 ? releases.length : index;
}

/** Compares `a.b.c` versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
