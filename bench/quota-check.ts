// CPU of ingest's limit check per event (issue #13: under 20 µs), in this
// process: the quota gate with a key limit, two stored quotas and spike
// protection, first on the in-process counters, then on Redis
// (`REDIS_URL`, default redis://127.0.0.1:6379, keys under a random prefix,
// deleted at the end) with checks batched as ingest batches them. Prints CPU
// (user + system) per check and the checks per Redis round trip. Short:
// about 10 s. Usage: npx tsx bench/quota-check.ts [checks]
import { randomBytes } from "node:crypto";
import type { QuotaRow } from "@sluice/db";
import { Redis } from "ioredis";
import {
  createMemoryCounterStore,
  createRedisCounterStore,
} from "../apps/server/src/quotas/counter-store.ts";
import { createQuotaLimiter } from "../apps/server/src/quotas/quota-limiter.ts";

const CHECKS = Number(process.argv[2] ?? 200_000);
const CONCURRENCY = 200;
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `sluice-bench-${randomBytes(4).toString("hex")}`;

const quota = (id: number, categories: string[]): QuotaRow => ({
  id,
  organizationId: 1,
  projectId: id === 1 ? 1 : null,
  categories,
  windowSeconds: 3600,
  quotaLimit: 1e12,
  reasonCode: "",
  createdAt: new Date(),
});

async function measure(name: string, store: ReturnType<typeof createMemoryCounterStore>) {
  let roundTrips = 0;
  let carried = 0;
  const gate = createQuotaLimiter({
    store,
    prefix,
    loadLimits: async () => ({
      organizationId: 1,
      quotas: [quota(1, ["error"]), quota(2, [])],
      spikeProtectionEnabled: true,
    }),
    now: Date.now,
    batchWindowMs: 1,
    spike: { multiple: 10, floorPerMinute: 1e12, trailingMinutes: 60 },
    onStoreFailure: (error) => {
      throw error;
    },
    onSpike: () => {},
    onRefused: () => {},
    onRoundTrip: (n) => {
      roundTrips++;
      carried += n;
    },
  });
  const scoping = { projectId: 1, keyId: 1, keyRateLimit: { count: 1e12, window: 3600 } };
  const quantities = new Map([["error", 1]]);
  await gate.check(scoping, quantities); // warm: limits loaded, spike bound read
  roundTrips = 0;
  carried = 0;
  const started = process.cpuUsage();
  const wall = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (done < CHECKS) {
        done++;
        await gate.check(scoping, quantities);
      }
    }),
  );
  const cpu = process.cpuUsage(started);
  const seconds = (performance.now() - wall) / 1000;
  const perCheckUs = (cpu.user + cpu.system) / done;
  console.log(
    `${name}: ${done} checks in ${seconds.toFixed(2)} s, CPU ${perCheckUs.toFixed(2)} µs per check, ` +
      `${roundTrips} round trips (${(carried / Math.max(1, roundTrips)).toFixed(1)} checks each)`,
  );
  await gate.close();
}

await measure("in-process counters", createMemoryCounterStore(Date.now));
const redisStore = createRedisCounterStore(redisUrl, 1_000, (error) =>
  console.error(error.message),
);
await measure("Redis counters", redisStore);
const redis = new Redis(redisUrl);
let cursor = "0";
do {
  const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
  cursor = next;
  if (keys.length > 0) await redis.del(...keys);
} while (cursor !== "0");
redis.disconnect();
