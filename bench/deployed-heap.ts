import { readFileSync } from "node:fs";

/**
 * The `--max-old-space-size` (MiB) that gives a Sluice process the V8 heap
 * limit it has when deployed by `manifest` (a file of `k8s/`): Node sizes the
 * heap from the memory limit of its cgroup when there is one (nodejs/node
 * #27508), as V8's `Heap::HeapSizeFromPhysicalMemory` (src/heap/heap.cc):
 * the old generation is a quarter of the memory times 2 on 64-bit, no less
 * than 256 MiB and no more than 4 GiB. The benchmark's machine has no memory
 * limit, so without this flag V8 sizes the heap from the host's memory, and a
 * 4 GiB limit lets V8 grow the old generation up to 4 times what is live
 * between major collections (`MemoryController::MaxGrowingFactor`), which no
 * deployment of the manifests does. Throws when the manifest names no
 * `limits: { memory: "<n>Mi|Gi" }`.
 */
export function deployedHeapFlag(manifest: string): string {
  const text = readFileSync(manifest, "utf8");
  const limit = /limits:\s*\{\s*memory:\s*"(\d+)(Mi|Gi)"/.exec(text);
  if (!limit) throw new Error(`${manifest}: no container memory limit (limits: { memory: ... })`);
  const memoryMiB = Number(limit[1]) * (limit[2] === "Gi" ? 1024 : 1);
  const oldGenerationMiB = Math.min(4096, Math.max(256, (memoryMiB / 4) * 2));
  return `--max-old-space-size=${Math.round(oldGenerationMiB)}`;
}
