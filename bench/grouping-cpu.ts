/**
 * `npm run bench:grouping`: the CPU the worker's grouping step costs per
 * typical event (`computeEventGrouping`, no project rules), with the
 * previous grouping config's hashes (a project in its transition) and
 * without them (every project created under the current config). The two
 * are timed in alternation, 15 rounds of 5,000 events each, in one process,
 * so that the host's speed cancels out of their ratio; prints the medians in
 * µs of CPU per event. Not a test: it never fails.
 */
import {
  computeEventGrouping,
  type GroupingConfigId,
  PREVIOUS_GROUPING_CONFIG,
} from "@sluice/grouping";
import { normalizeEvent } from "@sluice/protocol";
import { buildEvent, newEventId } from "./payloads.ts";

const ROUNDS = 15;
const now = new Date();
const events = Array.from({ length: 500 }, (_, i) =>
  normalizeEvent(buildEvent("typical", newEventId(), i), {
    eventId: "0".repeat(32),
    timestamp: now,
    receivedAt: now,
  }),
);

/** µs of CPU (user + system) per event for 10 passes over the events. */
function cpuPerEvent(secondaryConfig: GroupingConfigId | null): number {
  const started = process.cpuUsage();
  for (let pass = 0; pass < 10; pass++) {
    for (const event of events) computeEventGrouping(event, { rules: {}, secondaryConfig });
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / (10 * events.length);
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

for (let warm = 0; warm < 3; warm++) {
  cpuPerEvent(null);
  cpuPerEvent(PREVIOUS_GROUPING_CONFIG);
}
const withPrevious: number[] = [];
const currentOnly: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  withPrevious.push(cpuPerEvent(PREVIOUS_GROUPING_CONFIG));
  currentOnly.push(cpuPerEvent(null));
}
const a = median(withPrevious);
const b = median(currentOnly);
console.log(
  `grouping CPU per typical event (median of ${ROUNDS} alternating rounds):\n` +
    `  with the previous config's hashes (a project in transition)  ${a.toFixed(1)} µs\n` +
    `  current config only                                         ${b.toFixed(1)} µs (${(100 * (b / a)).toFixed(0)}% of it)`,
);
