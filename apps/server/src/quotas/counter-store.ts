import { Redis } from "ioredis";

/** How long after creation a command may wait for the first connection (ms). */
const STARTUP_WAIT_MS = 5_000;

/** One counter of a check: its key, limit (-1: only counted), expiry (epoch s) and quantity. */
type CounterSpec = { key: string; limit: number; expireAt: number; quantity: number };

/**
 * One check: all of its counters are consumed together or none is (Relay's
 * `is_rate_limited.lua`). `dependsOn` is the index, in the same batch, of
 * a check that must have been accepted first (attachments go with their
 * event, Relay `EnvelopeLimiter`); -1 for none.
 */
export type CounterCheck = { counters: CounterSpec[]; dependsOn: number };

/** Per check: `null` accepted, `"skipped"` its dependency was refused, else the index of each refusing counter. */
export type CheckResult = null | "skipped" | number[];

/**
 * Where counters live: Redis (every node of a fleet shares them) or this
 * process. `run` evaluates a batch of checks in order, atomically, in one
 * round trip; `read` returns counters' values (0 when absent).
 */
export type CounterStore = {
  run(checks: CounterCheck[]): Promise<CheckResult[]>;
  read(keys: string[]): Promise<number[]>;
  close(): Promise<void>;
};

/**
 * The batched form of Relay's `is_rate_limited.lua`
 * (relay-quotas/src/is_rate_limited.lua): a fixed-window counter per quota;
 * a check is refused when any of its counters would pass its limit, and
 * then none of them counts it. One EVALSHA runs a batch of checks in order.
 * The checks of a batch mostly share their counters, so each distinct
 * counter is sent, read (GET) and written (INCRBY, EXPIREAT) once per
 * batch, not once per check: KEYS are the distinct counters, ARGV[2i-1]
 * and ARGV[2i] the limit (-1: only counted) and expiry (epoch s) of KEYS[i],
 * and the last ARGV the checks, `dependency|key:quantity,key:quantity;…`
 * (dependency: 0-based index of a check that must have been accepted,
 * -1 none; key: 1-based index into KEYS). Returns, per counter of each
 * check, 0 (fine), 1 (refusing) or 2 (check skipped).
 */
const BATCH_SCRIPT = `
local n = #KEYS
local value, limit, delta = {}, {}, {}
for i = 1, n do
  value[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  limit[i] = tonumber(ARGV[2 * i - 1])
  delta[i] = 0
end
local results = {}
local accepted = {}
local c = 0
for dep, body in string.gmatch(ARGV[2 * n + 1], '(-?%d+)|([^;]*)') do
  c = c + 1
  local d = tonumber(dep)
  local skipped = d >= 0 and not accepted[d + 1]
  local failed = skipped
  local items = {}
  for k, q in string.gmatch(body, '(%d+):(%d+)') do
    items[#items + 1] = { tonumber(k), tonumber(q) }
  end
  for _, item in ipairs(items) do
    local flag = 2
    if not skipped then
      flag = 0
      local l = limit[item[1]]
      if l >= 0 and value[item[1]] + item[2] > l then
        flag = 1
        failed = true
      end
    end
    results[#results + 1] = flag
  end
  if not failed then
    for _, item in ipairs(items) do
      value[item[1]] = value[item[1]] + item[2]
      delta[item[1]] = delta[item[1]] + item[2]
    end
  end
  accepted[c] = not failed
end
for i = 1, n do
  if delta[i] > 0 then
    redis.call('INCRBY', KEYS[i], delta[i])
    redis.call('EXPIREAT', KEYS[i], ARGV[2 * i])
  end
end
return results
`;

function resultsOf(checks: CounterCheck[], flags: number[]): CheckResult[] {
  let at = 0;
  return checks.map((check) => {
    const own = flags.slice(at, at + check.counters.length);
    at += check.counters.length;
    if (own.some((f) => f === 2)) return "skipped";
    const refusing = own.flatMap((f, i) => (f === 1 ? [i] : []));
    return refusing.length > 0 ? refusing : null;
  });
}

/**
 * Counters in Redis. Commands fail at once while Redis is unreachable (no
 * offline queue, one attempt) and after `commandTimeoutMs`, so the caller
 * can fail open without holding requests. Only the first commands, sent
 * while the process is still connecting (its first 5 s), wait for the
 * connection (at most `commandTimeoutMs`), so a node does not start by
 * failing open.
 */
export function createRedisCounterStore(
  url: string,
  commandTimeoutMs: number,
  onError: (error: Error) => void,
): CounterStore {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  redis.on("error", onError);
  let connected = false;
  const firstReady = new Promise<void>((resolve) => {
    redis.once("ready", () => {
      connected = true;
      resolve();
    });
  });
  const createdAt = Date.now();
  const whenConnecting = async () => {
    // Past the first seconds a Redis that never came up is down: fail fast then.
    if (connected || Date.now() - createdAt > STARTUP_WAIT_MS) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      firstReady,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, commandTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
  };
  redis.defineCommand("sluiceQuotaBatch", { lua: BATCH_SCRIPT });
  type WithScript = Redis & {
    sluiceQuotaBatch(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  };
  return {
    async run(checks) {
      await whenConnecting();
      const index = new Map<string, number>();
      const keys: string[] = [];
      const limits: (string | number)[] = [];
      const packed: string[] = [];
      for (const check of checks) {
        const items: string[] = [];
        for (const c of check.counters) {
          let at = index.get(c.key);
          if (at === undefined) {
            keys.push(c.key);
            limits.push(c.limit, c.expireAt);
            at = keys.length;
            index.set(c.key, at);
          }
          items.push(`${at}:${c.quantity}`);
        }
        packed.push(`${check.dependsOn}|${items.join(",")}`);
      }
      const flags = await (redis as WithScript).sluiceQuotaBatch(
        keys.length,
        ...keys,
        ...limits,
        packed.join(";"),
      );
      return resultsOf(checks, flags.map(Number));
    },
    async read(keys) {
      if (keys.length === 0) return [];
      await whenConnecting();
      const values = await redis.mget(...keys);
      return values.map((v) => Number(v ?? 0));
    },
    async close() {
      redis.disconnect();
    },
  };
}

/** How often the in-process store drops expired counters (ms). */
const SWEEP_MS = 10_000;

/**
 * Counters in this process, for Sluice without Redis: the same semantics as
 * the script, synchronously. Expired counters are dropped every 10 s of
 * `now` (ms, injectable for tests).
 */
export function createMemoryCounterStore(now: () => number): CounterStore {
  const counters = new Map<string, { value: number; expireAt: number }>();
  let lastSweep = now();
  const value = (key: string, nowS: number) => {
    const entry = counters.get(key);
    return entry && entry.expireAt > nowS ? entry.value : 0;
  };
  return {
    async run(checks) {
      const nowMs = now();
      const nowS = nowMs / 1000;
      if (nowMs - lastSweep > SWEEP_MS) {
        for (const [key, entry] of counters) if (entry.expireAt <= nowS) counters.delete(key);
        lastSweep = nowMs;
      }
      const accepted: boolean[] = [];
      const flags: number[] = [];
      for (const check of checks) {
        const skipped = check.dependsOn >= 0 && !accepted[check.dependsOn];
        let failed = skipped;
        for (const c of check.counters) {
          const refused = !skipped && c.limit >= 0 && value(c.key, nowS) + c.quantity > c.limit;
          if (refused) failed = true;
          flags.push(skipped ? 2 : refused ? 1 : 0);
        }
        if (!failed) {
          for (const c of check.counters) {
            if (c.quantity <= 0) continue;
            counters.set(c.key, { value: value(c.key, nowS) + c.quantity, expireAt: c.expireAt });
          }
        }
        accepted.push(!failed);
      }
      return resultsOf(checks, flags);
    },
    async read(keys) {
      const nowS = now() / 1000;
      return keys.map((key) => value(key, nowS));
    },
    async close() {
      counters.clear();
    },
  };
}
