import type { ProjectLimits } from "@sluice/db";
import { LRUCache } from "lru-cache";
import type { AppliedRateLimit, QuotaDecision, QuotaGate, QuotaScoping } from "../quota-gate.ts";
import type { CheckResult, CounterCheck, CounterStore } from "./counter-store.ts";
import {
  appliedLimit,
  counterKey,
  ERROR_CATEGORIES,
  keyQuota,
  type Quota,
  quotaApplies,
  storedQuota,
  windowEnd,
  windowSlot,
} from "./quota-model.ts";
import { formatRateLimits } from "./rate-limit-header.ts";

/** Spike protection settings (README "Rate limits and quotas"). */
type SpikeOptions = {
  /** The bound is this multiple of the trailing average per minute… */
  multiple: number;
  /** …and never below this many events per minute. */
  floorPerMinute: number;
  /** Minutes the trailing average covers. */
  trailingMinutes: number;
};

/** A spike starting (with its bound, events per minute) or ending. */
type SpikeChange = { active: true; bound: number; at: Date } | { active: false; at: Date };

export type QuotaLimiterOptions = {
  store: CounterStore;
  /** Prefix of every counter key (the queue prefix: one per deployment). */
  prefix: string;
  /** The project's quotas; null when unknown. May throw: then nothing but the key limit applies. */
  loadLimits(projectId: number): Promise<ProjectLimits | null>;
  /** Epoch ms; injectable for tests. */
  now(): number;
  /** How long the first check waits for company before the round trip (ms). */
  batchWindowMs: number;
  spike: SpikeOptions;
  /** Called when the store fails; the checks of that batch were accepted. */
  onStoreFailure(error: unknown): void;
  onSpike(projectId: number, change: SpikeChange): void;
  onRefused(limit: AppliedRateLimit, category: string): void;
  /** Called once per store round trip with the checks it carried. */
  onRoundTrip(checks: number): void;
};

/** How long a project's quotas and its spike bound are trusted before they are read again (ms). */
const REFRESH_MS = 10_000;
/** Checks that flush a batch at once. */
const MAX_BATCH_CHECKS = 1_000;
/** Projects whose limits and spike state one process keeps. */
const MAX_PROJECTS = 10_000;
/** A spike ends when spike protection refused nothing for this long (ms). */
const SPIKE_QUIET_MS = 60_000;
/** Categories that require the envelope's event: refused with it (Relay `Item::requires_event`). */
const EVENT_DEPENDENT = new Set(["attachment", "attachment_item"]);

type SpikeState = { bound: number; computedAt: number; active: boolean; lastRefusedAt: number };
type Pending = { checks: CounterCheck[]; resolve(results: CheckResult[] | null): void };

/**
 * The quota check of ingest (a `QuotaGate`): per request, the key's rate
 * limit, the project's and organization's quotas and spike protection, as
 * fixed-window counters in `store`. Checks of requests that arrive within
 * `batchWindowMs` share one store round trip. A quota of 0 and a counter
 * known to be exhausted (until its window ends) refuse without a round
 * trip, as Relay's cached rate limits do. A store failure accepts (fails
 * open) and is reported through `onStoreFailure`.
 */
export function createQuotaLimiter(options: QuotaLimiterOptions): QuotaGate {
  const limitsCache = new LRUCache<number, { limits: ProjectLimits | null }>({
    max: MAX_PROJECTS,
    ttl: REFRESH_MS,
    fetchMethod: async (projectId) => {
      try {
        return { limits: await options.loadLimits(projectId) };
      } catch {
        return { limits: null };
      }
    },
  });
  const spikes = new LRUCache<number, SpikeState>({ max: MAX_PROJECTS });
  /** Counters refused at quantity 1: exhausted until the end of their window (epoch ms). */
  const exhausted = new LRUCache<string, number>({ max: 100_000 });
  let pending: Pending[] = [];
  let pendingChecks = 0;
  let timer: NodeJS.Timeout | null = null;

  const spikeQuota = (projectId: number, bound: number): Quota => ({
    id: "s",
    scope: "project",
    scopeId: projectId,
    categories: ERROR_CATEGORIES,
    limit: bound,
    window: 60,
    reasonCode: "spike_protection",
    shift: 0,
    historySeconds: options.spike.trailingMinutes * 60,
  });

  /** Reads the trailing minutes and recomputes the bound; a spike keeps its bound until it ends. */
  async function refreshSpike(projectId: number, nowMs: number): Promise<SpikeState> {
    const state = spikes.get(projectId) ?? {
      bound: options.spike.floorPerMinute,
      computedAt: -Infinity,
      active: false,
      lastRefusedAt: -Infinity,
    };
    if (nowMs - state.computedAt < REFRESH_MS) return state;
    state.computedAt = nowMs;
    spikes.set(projectId, state);
    if (state.active && nowMs - state.lastRefusedAt >= SPIKE_QUIET_MS) {
      state.active = false;
      options.onSpike(projectId, { active: false, at: new Date(nowMs) });
    }
    if (state.active) return state;
    const quota = spikeQuota(projectId, 0);
    const current = windowSlot(quota, nowMs);
    const keys: string[] = [];
    for (let slot = current - options.spike.trailingMinutes; slot < current; slot++) {
      keys.push(counterKey(options.prefix, quota, slot));
    }
    try {
      const counts = await options.store.read(keys);
      const average = counts.reduce((sum, n) => sum + n, 0) / options.spike.trailingMinutes;
      state.bound = Math.max(
        options.spike.floorPerMinute,
        Math.ceil(options.spike.multiple * average),
      );
    } catch (error) {
      options.onStoreFailure(error);
    }
    return state;
  }

  function flush() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    const batch = pending;
    pending = [];
    pendingChecks = 0;
    if (batch.length === 0) return;
    const all: CounterCheck[] = [];
    for (const p of batch) {
      const offset = all.length;
      for (const check of p.checks) {
        all.push({
          counters: check.counters,
          dependsOn: check.dependsOn < 0 ? -1 : check.dependsOn + offset,
        });
      }
    }
    options.onRoundTrip(all.length);
    options.store.run(all).then(
      (results) => {
        let at = 0;
        for (const p of batch) {
          p.resolve(results.slice(at, at + p.checks.length));
          at += p.checks.length;
        }
      },
      (error) => {
        options.onStoreFailure(error);
        for (const p of batch) p.resolve(null);
      },
    );
  }

  function submit(checks: CounterCheck[]): Promise<CheckResult[] | null> {
    return new Promise((resolve) => {
      pending.push({ checks, resolve });
      pendingChecks += checks.length;
      if (pendingChecks >= MAX_BATCH_CHECKS || options.batchWindowMs === 0) flush();
      else if (!timer) timer = setTimeout(flush, options.batchWindowMs);
    });
  }

  async function check(
    scoping: QuotaScoping,
    quantities: Map<string, number>,
  ): Promise<QuotaDecision> {
    const decision: QuotaDecision = { refused: new Map(), limits: [] };
    // The cached answer without a promise: the common case costs no await.
    const entry =
      limitsCache.get(scoping.projectId) ?? (await limitsCache.fetch(scoping.projectId));
    const limits = entry?.limits ?? null;
    const nowMs = options.now();
    const quotas: Quota[] = [];
    if (scoping.keyRateLimit) {
      const key = keyQuota(scoping, limits?.organizationId ?? 0, scoping.keyRateLimit);
      if (key) quotas.push(key);
    }
    for (const row of limits?.quotas ?? [])
      if (row.windowSeconds > 0) quotas.push(storedQuota(row));
    let spike: SpikeState | null = null;
    if (limits?.spikeProtectionEnabled && ERROR_CATEGORIES.some((c) => quantities.has(c))) {
      const known = spikes.get(scoping.projectId);
      spike =
        known && nowMs - known.computedAt < REFRESH_MS
          ? known
          : await refreshSpike(scoping.projectId, nowMs);
      quotas.push(spikeQuota(scoping.projectId, spike.bound));
    }
    if (quotas.length === 0) return decision;

    const refuse = (category: string, quota: Quota) => {
      const limit = appliedLimit(quota, nowMs);
      if (!decision.refused.has(category)) decision.refused.set(category, quota.reasonCode ?? "");
      if (
        !decision.limits.some(
          (l) =>
            l.scope === limit.scope &&
            l.reasonCode === limit.reasonCode &&
            l.categories.join() === limit.categories.join(),
        )
      ) {
        decision.limits.push(limit);
      }
      options.onRefused(limit, category);
      if (quota.id === "s" && spike) {
        spike.lastRefusedAt = nowMs;
        if (!spike.active) {
          spike.active = true;
          options.onSpike(scoping.projectId, {
            active: true,
            bound: spike.bound,
            at: new Date(nowMs),
          });
        }
      }
    };

    // Events first, so the checks of the items that require the event can depend on it.
    const categories = [...quantities.keys()].sort(
      (a, b) => Number(ERROR_CATEGORIES.includes(b)) - Number(ERROR_CATEGORIES.includes(a)),
    );
    const eventCategory = categories.find((c) => ERROR_CATEGORIES.includes(c)) ?? null;
    const remote: { category: string; quotas: Quota[]; check: CounterCheck }[] = [];
    /** Items that require the event but no quota counts: refused only with the event. */
    const followers: string[] = [];
    let eventRefusedLocally = false;
    for (const category of categories) {
      const quantity = quantities.get(category) ?? 0;
      if (quantity <= 0) continue;
      const dependent = EVENT_DEPENDENT.has(category) && eventCategory !== null;
      if (dependent && eventRefusedLocally) {
        decision.refused.set(category, decision.refused.get(eventCategory as string) ?? "");
        continue;
      }
      const applying = quotas.filter((q) => quotaApplies(q, category));
      if (applying.length === 0) {
        if (dependent) followers.push(category);
        continue;
      }
      const slots = applying.map((q) => windowSlot(q, nowMs));
      const keys = applying.map((q, i) => counterKey(options.prefix, q, slots[i] as number));
      const local = applying.find(
        (q, i) => q.limit === 0 || (exhausted.get(keys[i] as string) ?? 0) > nowMs,
      );
      if (local) {
        refuse(category, local);
        if (category === eventCategory) eventRefusedLocally = true;
        continue;
      }
      const eventIndex = remote.findIndex((r) => r.category === eventCategory);
      remote.push({
        category,
        quotas: applying,
        check: {
          dependsOn: dependent ? eventIndex : -1,
          counters: applying.map((q, i) => ({
            key: keys[i] as string,
            limit: q.limit,
            expireAt: windowEnd(q, slots[i] as number) + q.historySeconds,
            quantity,
          })),
        },
      });
    }
    const followEvent = () => {
      const reason = eventCategory ? decision.refused.get(eventCategory) : undefined;
      if (reason !== undefined)
        for (const category of followers) decision.refused.set(category, reason);
    };
    if (remote.length === 0) {
      followEvent();
      return decision;
    }
    const results = await submit(remote.map((r) => r.check));
    if (!results) return decision;
    remote.forEach((r, i) => {
      const result = results[i] ?? null;
      if (result === null) return;
      if (result === "skipped") {
        if (eventCategory)
          decision.refused.set(r.category, decision.refused.get(eventCategory) ?? "");
        return;
      }
      for (const index of result) {
        const quota = r.quotas[index] as Quota;
        const counter = r.check.counters[index];
        if (counter && counter.quantity === 1) {
          exhausted.set(counter.key, windowEnd(quota, windowSlot(quota, nowMs)) * 1000);
        }
      }
      refuse(r.category, r.quotas[result[0] as number] as Quota);
    });
    followEvent();
    return decision;
  }

  return {
    check,
    formatHeader: formatRateLimits,
    async close() {
      flush();
      await options.store.close();
    },
  };
}
