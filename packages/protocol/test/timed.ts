/**
 * Runs `fn` up to three times and keeps the fastest time (ms), so that one
 * GC pause or scheduling hiccup on a loaded machine is not a failure.
 */
export function timed<T>(fn: () => T): { value: T; ms: number } {
  let best = Number.POSITIVE_INFINITY;
  let value: T | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = performance.now();
    value = fn();
    best = Math.min(best, performance.now() - start);
    if (best < 20) break;
  }
  return { value: value as T, ms: best };
}
