import type { StoredEvent } from "@sluice/db";
import type { EventProcessBatchPayload } from "@sluice/queue";
import { describe, expect, it } from "vitest";
import { EventHandOff } from "./event-hand-off.ts";

const receivedAt = new Date("2026-12-01T00:00:00Z");
const stored = (from: number, n: number): StoredEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    projectId: 1,
    eventId: (from + i).toString(16).padStart(32, "0"),
    receivedAt,
  }));

function recorder(windowMs: number, fail = false) {
  const enqueued: EventProcessBatchPayload[][] = [];
  const failures: number[] = [];
  const handOff = new EventHandOff({
    enqueue: async (payloads) => {
      enqueued.push(payloads);
      if (fail) throw new Error("redis is down");
    },
    onFailure: (_error, events) => failures.push(events),
    windowMs,
  });
  return { handOff, enqueued, failures };
}

describe("EventHandOff", () => {
  it("gathers the commits of one window into one enqueue", async () => {
    const { handOff, enqueued } = recorder(30);
    handOff.add(stored(0, 3));
    handOff.add(stored(3, 2));
    handOff.add([]);
    expect(enqueued).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(enqueued).toHaveLength(1);
    expect(enqueued[0]?.[0]?.events.map((e) => e.eventId)).toEqual(
      stored(0, 5).map((e) => e.eventId),
    );
    expect(enqueued[0]?.[0]?.events[0]?.receivedAt).toBe(receivedAt.toISOString());
  });

  it("sends a full job at once, in jobs of at most 500 events", () => {
    const { handOff, enqueued } = recorder(60_000);
    handOff.add(stored(0, 1200));
    expect(enqueued.map((payloads) => payloads.map((p) => p.events.length))).toEqual([
      [500, 500, 200],
    ]);
  });

  it("flush sends what is gathered and waits for it; a failure is reported with its count", async () => {
    const { handOff, enqueued, failures } = recorder(60_000, true);
    handOff.add(stored(0, 7));
    await handOff.flush();
    expect(enqueued).toHaveLength(1);
    expect(failures).toEqual([7]);
    await handOff.flush();
    expect(enqueued).toHaveLength(1);
  });
});
