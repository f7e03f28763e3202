import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type NormalizedEvent, normalizeEvent } from "../src/normalize-event.ts";

const SEED = 0x5e1ce;
const LEVELS = ["fatal", "error", "warning", "info", "debug"];
const meta = {
  eventId: "9ec79c33ec9942ab8353589fcb2e04dc",
  timestamp: new Date(0),
  receivedAt: new Date(0),
};

/** 50 ms plus 100 ns a byte of the payload's JSON: normalizing walks it about once. */
// Generous on purpose: the budget catches superlinear work (seconds), not a loaded machine.
const budgetMs = (bytes: number) => 150 + (bytes * 400) / 1e6;

const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
const stringOrNull = (v: unknown) => v === null || typeof v === "string";

/** Fails with `what` unless `ok`; cheaper than `expect` in loops over 100,000 frames. */
function check(ok: boolean, what: string): void {
  if (!ok) expect.fail(what);
}

function normalizeChecked(raw: Record<string, unknown>): NormalizedEvent {
  const size = JSON.stringify(raw)?.length ?? 0;
  const start = performance.now();
  const event = normalizeEvent(raw, meta);
  const ms = performance.now() - start;
  check(ms < budgetMs(size), `normalizeEvent of ${size} bytes took ${ms.toFixed(1)} ms`);
  check(event.eventId === meta.eventId, "eventId");
  check(typeof event.type === "string" && typeof event.platform === "string", "type, platform");
  check(LEVELS.includes(event.level), `level ${event.level}`);
  for (const field of ["logger", "transaction", "dist", "serverName", "checksum"] as const) {
    check(stringOrNull(event[field]), field);
  }
  const release = event.release;
  if (release !== null) {
    check(release.length > 0 && release.length <= 200, "release length");
    check(!/[\n\r\t\0/\\]/.test(release), "release characters");
  }
  const environment = event.environment;
  if (environment !== null) {
    check(environment.length > 0 && environment.length <= 64, "environment length");
    check(!/[\n\r\t\0/\\]/.test(environment), "environment characters");
  }
  for (const list of [event.exceptions, event.threads, event.breadcrumbs, event.errors]) {
    check(Array.isArray(list) && list.every(isObject), "lists of objects");
  }
  for (const holder of [...event.exceptions, ...event.threads]) {
    const stack = holder.stacktrace;
    if (stack !== undefined) {
      check(Array.isArray(stack.frames) && stack.frames.every(isObject), "frames are objects");
    }
  }
  if (event.stacktrace !== null) check(Array.isArray(event.stacktrace.frames), "stacktrace");
  for (const exception of event.exceptions) {
    check(exception.type === undefined || typeof exception.type === "string", "exception type");
    check(exception.value === undefined || typeof exception.value === "string", "exception value");
  }
  for (const pair of event.tags) {
    const [key, value] = pair;
    check(pair.length === 2, "tag pair");
    check(typeof key === "string" && key.length > 0 && key.length <= 200, "tag key");
    check(typeof value === "string" && value.length > 0 && value.length <= 200, "tag value");
  }
  if (event.fingerprint !== null) {
    check(
      event.fingerprint.every((e) => typeof e === "string"),
      "fingerprint strings",
    );
  }
  if (event.logentry !== null) {
    const { message, formatted } = event.logentry;
    check(message === undefined || typeof message === "string", "logentry message");
    check(formatted === undefined || typeof formatted === "string", "logentry formatted");
    check(message !== undefined || formatted !== undefined, "logentry empty");
  }
  for (const field of ["user", "request", "sdk"] as const) {
    check(event[field] === null || isObject(event[field]), field);
  }
  check(isObject(event.contexts) && isObject(event.extra), "contexts, extra");
  return event;
}

/** Event payloads of the real SDK captures (packages/protocol/test/fixtures/sdk-captures). */
const realEvents: Record<string, unknown>[] = (() => {
  const dir = new URL("./fixtures/sdk-captures/", import.meta.url).pathname;
  const out: Record<string, unknown>[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".jsonl"))) {
    for (const line of readFileSync(dir + file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      const raw = JSON.parse(line);
      const body =
        raw.body_raw_b64 !== undefined
          ? Buffer.from(raw.body_raw_b64, "base64").toString("utf8")
          : String(raw.body_raw ?? "");
      const parts = String(raw.path).includes("/store/") ? [body] : body.split("\n");
      for (const part of parts) {
        if (!part.startsWith('{"')) continue;
        const value = JSON.parse(part);
        if ("exception" in value || "message" in value || "logentry" in value) out.push(value);
      }
    }
  }
  return out;
})();

const oddString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "\u202e",
    "latest",
    "..",
    "none",
    "a/b",
    "{{ default }}",
  ),
  fc.nat({ max: 50_000 }).map((n) => "x".repeat(n)),
);

const key = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom("__proto__", "constructor", "toString", "values", "frames", "type", "value"),
);

const anyJson = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.constantFrom(2 ** 63, -0, 1e308),
    oddString,
    fc.array(tie("node"), { maxLength: 5 }),
    fc.dictionary(key, tie("node"), { maxKeys: 5 }),
  ),
})).node;

const FIELDS = [
  "exception",
  "threads",
  "stacktrace",
  "message",
  "logentry",
  "tags",
  "fingerprint",
  "level",
  "platform",
  "release",
  "environment",
  "user",
  "contexts",
  "request",
  "breadcrumbs",
  "extra",
  "sdk",
  "errors",
  "type",
  "checksum",
  "logger",
  "transaction",
  "dist",
  "server_name",
];

/** A path into a real event and a value to put there. */
const edit = fc.tuple(
  fc.array(fc.oneof(fc.constantFrom(...FIELDS), key, fc.nat(8)), { minLength: 1, maxLength: 6 }),
  anyJson,
);

function applyEdit(target: Record<string, unknown>, path: (string | number)[], value: unknown) {
  let node: unknown = target;
  for (const [i, step] of path.entries()) {
    if (node === null || typeof node !== "object") return;
    const container = node as Record<string | number, unknown>;
    if (i === path.length - 1) {
      Object.defineProperty(container, step, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return;
    }
    // Own properties only: following `__proto__` would edit Object.prototype itself.
    node = Object.hasOwn(container, step) ? container[step] : undefined;
  }
}

describe("normalizeEvent properties", () => {
  it("normalizes every real SDK event", () => {
    expect(realEvents.length).toBeGreaterThan(3);
    for (const raw of realEvents) normalizeChecked(structuredClone(raw));
  });

  it("never throws on any JSON object, and returns one documented shape", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), key), anyJson), (raw) => {
        normalizeChecked(JSON.parse(JSON.stringify(raw)));
      }),
      { seed: SEED, numRuns: 2_000 },
    );
  });

  it("never throws on real SDK events with fields replaced anywhere", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...realEvents),
        fc.array(edit, { minLength: 1, maxLength: 6 }),
        (real, edits) => {
          const raw = structuredClone(real);
          for (const [path, value] of edits) applyEdit(raw, path, value);
          normalizeChecked(JSON.parse(JSON.stringify(raw)));
        },
      ),
      { seed: SEED, numRuns: 1_000 },
    );
  });

  it("handles many frames, exceptions, tags and breadcrumbs in bounded time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom(...FIELDS), (n, field) => {
        const many = Array.from({ length: n }, (_, i) => ({
          type: "E",
          value: String(i),
          frames: [{}],
        }));
        const raw: Record<string, unknown> = {
          exception: { values: [{ type: "E", stacktrace: { frames: many } }] },
          [field]: field === "tags" ? many.map((m) => [m.value, m.value]) : many,
        };
        normalizeChecked(raw);
      }),
      { seed: SEED, numRuns: 20 },
    );
  });
});
