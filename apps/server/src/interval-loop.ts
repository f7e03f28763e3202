import type { Loop } from "./roles.ts";

/**
 * Runs `tick` every `intervalMs` (ms), one at a time: an interval that finds
 * the last tick still running is skipped. `stop` clears the timer and waits
 * for a running tick, which sees `stopping()` turn true.
 */
export function every(intervalMs: number, tick: (stopping: () => boolean) => Promise<void>): Loop {
  let running: Promise<void> | null = null;
  let stopped = false;
  const timer = setInterval(() => {
    if (!running) running = tick(() => stopped).finally(() => (running = null));
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
