import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
};
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] };

/**
 * The functions that took the most CPU (self time) in the `.cpuprofile`
 * files a process wrote with `--cpu-prof`, as "share  function  file:line".
 */
export function summarizeCpuProfiles(dir: string, top: number): string[] {
  const selfTicks = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
    const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url
        ? `${url.replace(/^.*\/(node_modules|apps|packages)\//, "$1/")}:${lineNumber + 1}`
        : "";
      const key = `${functionName || "(anonymous)"}  ${where}`;
      selfTicks.set(key, (selfTicks.get(key) ?? 0) + hits);
      total += hits;
    }
  }
  return [...selfTicks.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, hits]) => `${((hits / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
}
