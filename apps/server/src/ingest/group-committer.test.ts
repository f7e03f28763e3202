import type { EventRow, IngestBatch } from "@sluice/db";
import { describe, expect, it } from "vitest";
import { GroupCommitter, mergeWrites } from "./group-committer.ts";

const event = (eventId: string): EventRow => ({
  projectId: 1,
  eventId,
  receivedAt: new Date(0),
  timestamp: new Date(0),
  keyId: 1,
  payloadText: "{}",
});
const writes = (...ids: string[]): IngestBatch => ({
  events: ids.map(event),
  attachments: [],
  outcomes: [],
});
const options = { windowMs: 5, maxEvents: 100, maxInFlight: 1 };

describe("GroupCommitter", () => {
  it("is overloaded while more requests wait than maxPending, and not once they are answered", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const committer = new GroupCommitter(
      async () => {
        await gate;
        return [];
      },
      () => {},
      () => {},
      { ...options, maxPending: 3 },
    );
    const first = [committer.submit(writes("a")), committer.submit(writes("b"))];
    expect(committer.overloaded()).toBe(false);
    const third = committer.submit(writes("c"));
    expect(committer.overloaded()).toBe(true);
    release();
    await Promise.all([...first, third]);
    expect(committer.overloaded()).toBe(false);
  });

  it("answers concurrent submissions from one store call, after it returns", async () => {
    const calls: IngestBatch[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const committer = new GroupCommitter(
      async (batch) => {
        calls.push(batch);
        await gate;
        return [];
      },
      () => {},
      () => {},
      options,
    );
    let answered = 0;
    const results = ["a", "b", "c"].map((id) =>
      committer.submit(writes(id)).then((r) => {
        answered++;
        return r;
      }),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(1);
    expect(answered).toBe(0);
    release();
    expect(await Promise.all(results)).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(calls[0]?.events.map((e) => e.eventId)).toEqual(["a", "b", "c"]);
  });

  it("stores a request's events without its outcomes when only the outcomes fail", async () => {
    const stored: IngestBatch[] = [];
    const store = async (batch: IngestBatch) => {
      if (batch.outcomes.length > 0)
        throw Object.assign(new Error("bigint out of range"), { code: "22003" });
      stored.push(batch);
      return [];
    };
    const committer = new GroupCommitter(
      store,
      () => {},
      () => {},
      options,
    );
    const outcome = {
      projectId: 1,
      hour: new Date(0),
      outcome: "accepted",
      category: "error",
      reason: "",
      quantity: 1,
    };
    const result = await committer.submit({ ...writes("a"), outcomes: [outcome] });
    expect(result).toEqual({ ok: true });
    expect(stored.map((b) => b.events.map((e) => e.eventId))).toEqual([["a"]]);
    expect(await committer.submit({ ...writes(), outcomes: [outcome] })).toMatchObject({
      ok: false,
      kind: "invalid",
    });
  });

  it("on a data error, writes each request alone so only the bad one fails", async () => {
    const store = async (batch: IngestBatch) => {
      if (batch.events.some((e) => e.eventId === "bad"))
        throw Object.assign(new Error("invalid input"), { code: "22P02" });
      return [];
    };
    const committer = new GroupCommitter(
      store,
      () => {},
      () => {},
      options,
    );
    const [good, bad] = await Promise.all([
      committer.submit(writes("good")),
      committer.submit(writes("bad")),
    ]);
    expect(good).toEqual({ ok: true });
    expect(bad).toMatchObject({ ok: false, kind: "invalid" });
  });

  it("answers unavailable to every request when storage is down", async () => {
    const store = async () => {
      throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
    };
    const committer = new GroupCommitter(
      store,
      () => {},
      () => {},
      options,
    );
    const results = await Promise.all([
      committer.submit(writes("a")),
      committer.submit(writes("b")),
    ]);
    expect(results).toEqual([
      { ok: false, kind: "unavailable", detail: "storage unavailable" },
      { ok: false, kind: "unavailable", detail: "storage unavailable" },
    ]);
  });

  it("drains what is pending", async () => {
    const stored: string[] = [];
    const committer = new GroupCommitter(
      async (b) => {
        stored.push(...b.events.map((e) => e.eventId));
        return [];
      },
      () => {},
      () => {},
      { ...options, windowMs: 10_000 },
    );
    const pending = committer.submit(writes("x"));
    await committer.drain();
    expect(stored).toEqual(["x"]);
    expect(await pending).toEqual({ ok: true });
  });
});

describe("mergeWrites", () => {
  it("keeps one event per (project, event_id) and sums outcome counters in key order", () => {
    const hour = new Date(0);
    const outcome = (category: string, quantity: number) => ({
      projectId: 1,
      hour,
      outcome: "accepted",
      category,
      reason: "",
      quantity,
    });
    const merged = mergeWrites([
      { events: [event("a")], attachments: [], outcomes: [outcome("session", 1)] },
      {
        events: [event("a"), event("b")],
        attachments: [],
        outcomes: [outcome("session", 2), outcome("error", 1)],
      },
    ]);
    expect(merged.events.map((e) => e.eventId)).toEqual(["a", "b"]);
    expect(merged.outcomes.map((o) => [o.category, o.quantity])).toEqual([
      ["error", 1],
      ["session", 3],
    ]);
  });
});
