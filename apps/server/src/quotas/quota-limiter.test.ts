import type { ProjectLimits, QuotaRow } from "@sluice/db";
import { describe, expect, it } from "vitest";
import type { QuotaScoping } from "../quota-gate.ts";
import { createMemoryCounterStore } from "./counter-store.ts";
import { createQuotaLimiter } from "./quota-limiter.ts";
import { formatRateLimits } from "./rate-limit-header.ts";

const quotaRow = (over: Partial<QuotaRow>): QuotaRow => ({
  id: 1,
  organizationId: 1,
  projectId: 7,
  categories: [],
  windowSeconds: 60,
  quotaLimit: 10,
  reasonCode: "",
  createdAt: new Date(0),
  ...over,
});

function setup(limits: Partial<ProjectLimits> = {}, spike = { multiple: 3, floorPerMinute: 20 }) {
  const clock = { now: Date.UTC(2026, 0, 1, 12, 0, 0) };
  const spikes: { active: boolean; bound?: number }[] = [];
  const trips: number[] = [];
  const gate = createQuotaLimiter({
    store: createMemoryCounterStore(() => clock.now),
    prefix: "t",
    loadLimits: async () => ({
      organizationId: 1,
      quotas: [],
      spikeProtectionEnabled: false,
      ...limits,
    }),
    now: () => clock.now,
    batchWindowMs: 0,
    spike: { ...spike, trailingMinutes: 60 },
    onStoreFailure: () => {},
    onSpike: (_, change) =>
      spikes.push(change.active ? { active: true, bound: change.bound } : { active: false }),
    onRefused: () => {},
    onRoundTrip: (n) => trips.push(n),
  });
  return { gate, clock, spikes, trips };
}

const scoping: QuotaScoping = { projectId: 7, keyId: 3, keyRateLimit: null };
const events = (n = 1) => new Map([["error", n]]);

describe("rate limit header", () => {
  it("formats limits as Relay's format_rate_limits test expects", () => {
    expect(
      formatRateLimits([
        { categories: [], scope: "organization", reasonCode: "my_limit", retryAfterSeconds: 42 },
        {
          categories: ["transaction", "security"],
          scope: "project",
          reasonCode: null,
          retryAfterSeconds: 4711,
        },
      ]),
    ).toBe("42::organization:my_limit, 4711:transaction;security:project");
  });
});

describe("quota limiter", () => {
  it("accepts up to a key limit in a fixed window, then refuses until the window ends", async () => {
    const { gate, clock } = setup();
    const keyed = { ...scoping, keyRateLimit: { count: 2, window: 60 } };
    const first = await gate.check(keyed, events());
    const second = await gate.check(keyed, events());
    const third = await gate.check(keyed, events());
    expect(first.refused.size + second.refused.size).toBe(0);
    expect(third.refused.get("error")).toBe("key_quota");
    expect(third.limits[0]).toMatchObject({ scope: "key", reasonCode: "key_quota" });
    // Windows of organization 1 are shifted by 1 s (1 % 60): this one ends at 12:00:59.
    expect(third.limits[0]?.retryAfterSeconds).toBe(59);
    // Other categories are not counted by a key limit.
    expect((await gate.check(keyed, new Map([["transaction", 1]]))).refused.size).toBe(0);
    clock.now += 58_000;
    expect((await gate.check(keyed, events())).refused.size).toBe(1);
    clock.now += 1_000;
    expect((await gate.check(keyed, events())).refused.size).toBe(0);
  });

  it("refuses everything at a limit of 0 without a round trip, for 60 s", async () => {
    const { gate, trips } = setup({ quotas: [quotaRow({ quotaLimit: 0, reasonCode: "zero" })] });
    const decision = await gate.check(scoping, new Map([["session", 3]]));
    expect(decision.refused.get("session")).toBe("zero");
    expect(decision.limits).toEqual([
      { categories: [], scope: "project", reasonCode: "zero", retryAfterSeconds: 60 },
    ]);
    expect(trips).toEqual([]);
  });

  it("refuses attachments with their event, and checks every category in one round trip", async () => {
    const { gate, trips } = setup({
      quotas: [
        quotaRow({ categories: ["error"], quotaLimit: 1, reasonCode: "errors" }),
        quotaRow({ id: 2, quotaLimit: 1_000_000 }),
      ],
    });
    const quantities = new Map([
      ["error", 1],
      ["attachment", 500],
      ["attachment_item", 1],
      ["session", 1],
    ]);
    expect((await gate.check(scoping, quantities)).refused.size).toBe(0);
    const refused = await gate.check(scoping, quantities);
    expect([...refused.refused]).toEqual([
      ["error", "errors"],
      ["attachment", "errors"],
      ["attachment_item", "errors"],
    ]);
    // The second time the event is refused, so its attachments are not counted either.
    expect(trips).toEqual([4, 4]);
  });

  it("refuses attachments with their event even when no quota counts attachments", async () => {
    const { gate } = setup({ quotas: [quotaRow({ categories: ["error"], quotaLimit: 0 })] });
    const decision = await gate.check(
      scoping,
      new Map([
        ["error", 1],
        ["attachment", 5],
        ["attachment_item", 1],
        ["session", 1],
      ]),
    );
    expect([...decision.refused.keys()]).toEqual(["error", "attachment", "attachment_item"]);
  });

  it("shares one round trip between requests of the same batch window", async () => {
    const clock = { now: 0 };
    const trips: number[] = [];
    const gate = createQuotaLimiter({
      store: createMemoryCounterStore(() => clock.now),
      prefix: "t",
      loadLimits: async () => ({
        organizationId: 1,
        quotas: [quotaRow({ quotaLimit: 5 })],
        spikeProtectionEnabled: false,
      }),
      now: () => clock.now,
      batchWindowMs: 5,
      spike: { multiple: 3, floorPerMinute: 20, trailingMinutes: 60 },
      onStoreFailure: () => {},
      onSpike: () => {},
      onRefused: () => {},
      onRoundTrip: (n) => trips.push(n),
    });
    await gate.check(scoping, events()); // loads the project's limits
    const decisions = await Promise.all(
      Array.from({ length: 20 }, () => gate.check(scoping, events())),
    );
    expect(decisions.filter((d) => d.refused.size === 0)).toHaveLength(4);
    expect(trips).toEqual([1, 20]);
  });

  it("fails open when the store fails", async () => {
    const failures: unknown[] = [];
    const gate = createQuotaLimiter({
      store: {
        run: async () => {
          throw new Error("redis down");
        },
        read: async () => {
          throw new Error("redis down");
        },
        close: async () => {},
      },
      prefix: "t",
      loadLimits: async () => ({
        organizationId: 1,
        quotas: [quotaRow({ quotaLimit: 1 })],
        spikeProtectionEnabled: true,
      }),
      now: Date.now,
      batchWindowMs: 0,
      spike: { multiple: 3, floorPerMinute: 20, trailingMinutes: 60 },
      onStoreFailure: (error) => failures.push(error),
      onSpike: () => {},
      onRefused: () => {},
      onRoundTrip: () => {},
    });
    for (let i = 0; i < 3; i++) expect((await gate.check(scoping, events())).refused.size).toBe(0);
    expect(failures.length).toBeGreaterThanOrEqual(3);
  });

  it("trips spike protection past the floor, holds the bound, and recovers once the spike ends", async () => {
    const { gate, clock, spikes } = setup({ spikeProtectionEnabled: true });
    // An hour of 6 events a minute: average 6, bound max(20, 3 × 6) = 20.
    for (let minute = 0; minute < 60; minute++) {
      for (let i = 0; i < 6; i++)
        expect((await gate.check(scoping, events())).refused.size).toBe(0);
      clock.now += 60_000;
    }
    // The bound is recomputed every 10 s: 18 → the floor 20 still holds. Now a spike.
    clock.now += 10_000;
    const burst = [];
    for (let i = 0; i < 50; i++) burst.push(await gate.check(scoping, events()));
    const accepted = burst.filter((d) => d.refused.size === 0).length;
    expect(accepted).toBe(20);
    const refused = burst.find((d) => d.refused.size > 0);
    expect(refused?.refused.get("error")).toBe("spike_protection");
    expect(refused?.limits[0]).toMatchObject({ scope: "project", reasonCode: "spike_protection" });
    expect(spikes).toEqual([{ active: true, bound: 20 }]);
    // Quiet traffic for over a minute: the spike ends and events pass again.
    clock.now += 61_000;
    expect((await gate.check(scoping, events())).refused.size).toBe(0);
    expect(spikes).toEqual([{ active: true, bound: 20 }, { active: false }]);
  });
});
