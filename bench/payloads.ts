import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

/** One kind of event the benchmark sends, built from a real SDK capture. */
export type PayloadKind = "small" | "typical" | "large";

const captures = new URL("../packages/protocol/test/fixtures/sdk-captures/", import.meta.url)
  .pathname;

function captureEvent(file: string, seq: number): Record<string, unknown> {
  for (const line of readFileSync(`${captures}${file}`, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const raw = JSON.parse(line);
    if (raw.seq !== seq) continue;
    const body: string = raw.body_raw ?? Buffer.from(raw.body_raw_b64, "base64").toString();
    const lines = body.split("\n");
    return JSON.parse(lines[2] as string);
  }
  throw new Error(`no capture ${file} #${seq}`);
}

/**
 * The three payloads: a small message event, a typical error (about 3 KB:
 * an exception with 15 frames, breadcrumbs, contexts, tags) and a large one
 * (about 30 KB), from @sentry/node captures. `variant` spreads events over a
 * few hundred distinct issues, as real traffic does.
 */
export function buildEvent(
  kind: PayloadKind,
  eventId: string,
  variant: number,
): Record<string, unknown> {
  const base = captureEvent("node-sdk-uncaught.jsonl", 2);
  type Exception = {
    type: string;
    value: string;
    stacktrace: { frames: Record<string, unknown>[] };
  };
  const exception = structuredClone(
    (base.exception as { values: Exception[] }).values[0],
  ) as Exception;
  exception.type = `BenchError${variant % 300}`;
  exception.value = `request ${variant} failed`;
  const frames = exception.stacktrace.frames;
  while (frames.length < 15)
    frames.unshift({ ...frames[0], function: `caller${frames.length}`, lineno: frames.length * 7 });
  const common = {
    event_id: eventId,
    timestamp: Date.now() / 1000,
    platform: "node",
    sdk: base.sdk,
    release: "bench@1.0.0",
    environment: "bench",
  };
  if (kind === "small")
    return { ...common, level: "info", message: `cache miss for key ${variant % 300}` };
  const typical = {
    ...common,
    level: "error",
    exception: { values: [exception] },
    breadcrumbs: {
      values: Array.from({ length: 8 }, (_, i) => ({
        timestamp: Date.now() / 1000 - i,
        category: "http",
        message: `GET /api/items/${i}`,
        level: "info",
      })),
    },
    contexts: base.contexts,
    tags: { region: "eu-west-1", shard: String(variant % 16), route: "/checkout" },
    user: { id: `user-${variant % 1000}` },
  };
  if (kind === "typical") return typical;
  return {
    ...typical,
    extra: {
      payload: "x".repeat(24_000),
      items: Array.from({ length: 40 }, (_, i) => ({ id: i, sku: `SKU-${i}` })),
    },
  };
}

/** An envelope body (one event item) or a `/store/` body, optionally gzipped. */
function encodeBody(
  event: Record<string, unknown>,
  form: "envelope" | "store",
  gzip: boolean,
): Buffer {
  const json = JSON.stringify(event);
  const text =
    form === "store"
      ? json
      : `{"event_id":"${event.event_id}","sent_at":"${new Date().toISOString()}"}\n{"type":"event"}\n${json}\n`;
  return gzip ? gzipSync(text) : Buffer.from(text);
}

export function newEventId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** What a load-generator process is asked to send (its argv JSON). */
export type LoadJob = {
  url: string;
  kind: PayloadKind;
  form: "envelope" | "store";
  gzip: boolean;
  seconds: number;
  /** Distinct bodies to build (each with its own event id), sent round-robin. */
  bodies: number;
};

/** The bodies a load job sends and the headers they go with. */
export function requestsOf(job: LoadJob): { bodies: Buffer[]; headers: Record<string, string> } {
  const bodies = Array.from({ length: job.bodies }, (_, i) =>
    encodeBody(buildEvent(job.kind, newEventId(), i), job.form, job.gzip),
  );
  const headers: Record<string, string> = {
    "content-type": job.form === "store" ? "application/json" : "application/x-sentry-envelope",
  };
  if (job.gzip) headers["content-encoding"] = "gzip";
  return { bodies, headers };
}
