import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

type CallFrame = { functionName: string; url: string };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type CpuProfile = {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
};

const fromPackage = (url: string, ...names: string[]) =>
  names.some((name) => url.includes(`/node_modules/${name}/`));

/**
 * Ingest's stages, each recognized by a frame of its stack (the frame
 * nearest the leaf that matches any stage decides): Sluice's own functions
 * by name (the bundle keeps them), libraries by the package their file is
 * in, Node's by module. Order only matters for a frame that matches two.
 */
const STAGES: [stage: string, matches: (frame: CallFrame) => boolean][] = [
  ["garbage collection", (f) => f.functionName === "(garbage collector)"],
  [
    "compress",
    (f) =>
      f.functionName === "compressPayload" ||
      f.url === "node:zlib" ||
      fromPackage(f.url, "zstd-napi"),
  ],
  ["envelope parse", (f) => /^parse(Envelope|EnvelopeHeader|HeaderLine)$/.test(f.functionName)],
  [
    "event parse and normalize",
    (f) =>
      /^(parseEventJson|parseBoundedJson|scanJson|scanEventFields|readEventPayload|normalizeEvent|parseEventItem|planEnvelopeWrites|prepareEnvelopeWrites|prepareStoreWrites|checkLimits|resolveEventTime)$/.test(
        f.functionName,
      ),
  ],
  ["body read", (f) => /^(readBody|openBody|decodeLegacyStoreBody)$/.test(f.functionName)],
  [
    "commit (pg client)",
    (f) =>
      fromPackage(f.url, "pg", "pg-protocol", "pg-pool", "pg-types") ||
      /^(insertIngestBatch|eventsJson|mergeWrites)$/.test(f.functionName),
  ],
  ["enqueue and quotas (Redis client)", (f) => fromPackage(f.url, "bullmq", "ioredis")],
  ["metrics", (f) => fromPackage(f.url, "prom-client")],
  ["logging", (f) => fromPackage(f.url, "pino", "pino-std-serializers", "sonic-boom")],
  [
    "HTTP (Node http, Hono)",
    (f) =>
      fromPackage(f.url, "hono", "@hono") || /^node:(_http|http|net|internal\/http)/.test(f.url),
  ],
];

/** A stage's share of the CPU samples in the window. */
export type StageShare = { stage: string; share: number; samples: number };

/**
 * Splits the CPU samples of the `.cpuprofile` files in `dir` by ingest
 * stage, counting only samples taken between `window.startUs` and
 * `window.endUs` (V8's profile clock: CLOCK_MONOTONIC in µs, the clock of
 * `process.hrtime`), so the split is the peak phase's alone. Idle samples
 * are left out; what no stage claims is "other (event loop, Node internals)".
 */
export function cpuByStage(dir: string, window?: { startUs: number; endUs: number }): StageShare[] {
  const counts = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
    const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes)
      for (const child of node.children ?? []) parent.set(child, node.id);
    const stageOf = new Map<number, string | null>();
    const classify = (id: number): string | null => {
      const known = stageOf.get(id);
      if (known !== undefined) return known;
      const node = byId.get(id);
      if (!node || node.callFrame.functionName === "(idle)") return null;
      let stage = STAGES.find(([, matches]) => matches(node.callFrame))?.[0];
      if (!stage) {
        const up = parent.get(id);
        stage =
          (up === undefined ? undefined : classify(up)) ?? "other (event loop, Node internals)";
      }
      stageOf.set(id, stage);
      return stage;
    };
    let at = profile.startTime;
    profile.samples.forEach((id, i) => {
      at += profile.timeDeltas[i] ?? 0;
      if (window && (at < window.startUs || at > window.endUs)) return;
      const stage = classify(id);
      if (stage === null) return;
      counts.set(stage, (counts.get(stage) ?? 0) + 1);
      total++;
    });
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([stage, samples]) => ({ stage, samples, share: total > 0 ? samples / total : 0 }));
}
