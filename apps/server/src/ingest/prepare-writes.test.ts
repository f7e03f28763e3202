import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compressPayload, decompressPayload } from "@sluice/db";
import { defaultLimits, parseEnvelope } from "@sluice/protocol";
import { createDirectoryBlobStore } from "@sluice/storage";
import { describe, expect, it } from "vitest";
import {
  envelopeQuantities,
  type IngestContext,
  prepareEnvelopeWrites,
  prepareShedWrites,
  prepareStoreWrites,
} from "./prepare-writes.ts";

const receivedAt = new Date("2026-03-04T05:06:07.890Z");
const ctx: IngestContext = {
  projectId: 7,
  keyId: 3,
  receivedAt,
  limits: defaultLimits,
  maxEventAgeMs: 90 * 86_400_000,
  blobs: createDirectoryBlobStore(mkdtempSync(join(tmpdir(), "sluice-prepare-"))),
  payloadStorage: "jsonb",
};
const eventId = "a".repeat(32);
const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("prepareStoreWrites", () => {
  it("stores an error event with one accepted outcome in its hour", () => {
    const prepared = prepareStoreWrites(body({ event_id: eventId, message: "boom" }), ctx);
    expect(prepared).toMatchObject({ ok: true, eventId, itemType: "event" });
    if (!prepared.ok) return;
    expect(prepared.writes.events).toHaveLength(1);
    expect(prepared.writes.events[0]).toMatchObject({
      projectId: 7,
      keyId: 3,
      eventId,
      receivedAt,
    });
    expect(prepared.writes.attachments).toEqual([]);
    expect(prepared.writes.outcomes).toEqual([
      {
        projectId: 7,
        hour: new Date("2026-03-04T05:00:00.000Z"),
        outcome: "accepted",
        category: "error",
        reason: "",
        quantity: 1,
      },
    ]);
  });

  it("counts a transaction without storing it", () => {
    const prepared = prepareStoreWrites(body({ event_id: eventId, type: "transaction" }), ctx);
    expect(prepared).toMatchObject({ ok: true, eventId, itemType: "transaction" });
    if (!prepared.ok) return;
    expect(prepared.writes.events).toEqual([]);
    expect(prepared.writes.outcomes).toMatchObject([
      { outcome: "accepted", category: "transaction" },
    ]);
  });

  it.each(["compressed", "zstd"] as const)(
    "stores the body as received, compressed, when payloads are stored %s",
    (payloadStorage) => {
      const sent = body({ event_id: eventId, message: "caf\u00e9 \u2192" });
      const prepared = prepareStoreWrites(sent, { ...ctx, payloadStorage });
      if (!prepared.ok) throw new Error(prepared.detail);
      const [row] = prepared.writes.events;
      expect(row?.payloadText).toBeUndefined();
      expect(row?.payloadCompressed).toEqual(compressPayload(sent, payloadStorage));
      expect(decompressPayload(row?.payloadCompressed as Buffer)).toEqual(
        JSON.parse(sent.toString()),
      );
    },
  );

  it("generates an event id when the body has none", () => {
    const prepared = prepareStoreWrites(body({ message: "no id" }), ctx);
    expect(prepared.ok && prepared.eventId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("refuses a body that is not an event object, or has a bad event_id", () => {
    for (const bad of [Buffer.from("not json"), body([1, 2]), body({ event_id: "nope" })]) {
      const prepared = prepareStoreWrites(bad, ctx);
      expect(prepared).toMatchObject({ ok: false, status: 400 });
      expect(!prepared.ok && prepared.detail).toMatch(/^invalid event: /);
    }
  });
});

describe("prepareShedWrites", () => {
  it("is one invalid/internal outcome in the hour of the time given", () => {
    expect(prepareShedWrites(7, "unknown", Date.parse("2026-03-04T05:59:59Z"))).toEqual({
      events: [],
      attachments: [],
      outcomes: [
        {
          projectId: 7,
          hour: new Date("2026-03-04T05:00:00.000Z"),
          outcome: "invalid",
          category: "unknown",
          reason: "internal",
          quantity: 1,
        },
      ],
    });
  });
});

function envelopeOf(lines: unknown[]) {
  const text = `${lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")}\n`;
  const parsed = parseEnvelope(Buffer.from(text));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.envelope;
}

describe("rate-limited envelopes", () => {
  const envelope = envelopeOf([
    { event_id: eventId },
    { type: "event" },
    { message: "x" },
    { type: "attachment", length: 5 },
    "hello",
    { type: "session" },
    { sid: "s" },
    { type: "client_report" },
    { discarded_events: [] },
    { type: "nonsense" },
    "{}",
  ]);

  it("asks the quotas for the event, attachment bytes and count, and other known items only", () => {
    expect([...envelopeQuantities(envelope, defaultLimits)]).toEqual([
      ["error", 1],
      ["attachment", 5],
      ["attachment_item", 1],
      ["session", 1],
    ]);
  });

  it("counts refused items rate_limited with their reason and stores the rest", async () => {
    const refused = new Map([
      ["error", "key_quota"],
      ["attachment", "key_quota"],
    ]);
    const prepared = await prepareEnvelopeWrites(envelope, { ...ctx, refused });
    if (!prepared.ok) throw new Error(prepared.detail);
    expect(prepared.writes.events).toEqual([]);
    expect(prepared.writes.attachments).toEqual([]);
    expect(prepared.allRefused).toBe(false);
    const counted = prepared.writes.outcomes.map((o) => [
      o.outcome,
      o.category,
      o.reason,
      o.quantity,
    ]);
    expect(counted).toEqual(
      expect.arrayContaining([
        ["rate_limited", "error", "key_quota", 1],
        ["rate_limited", "attachment", "key_quota", 5],
        ["rate_limited", "attachment_item", "key_quota", 1],
        ["accepted", "session", "", 1],
      ]),
    );
    const all = await prepareEnvelopeWrites(envelope, {
      ...ctx,
      refused: new Map([...refused, ["session", "q"]]),
    });
    expect(all.ok && all.allRefused).toBe(true);
  });

  it("counts a refused /store/ body rate_limited and stores nothing", () => {
    const prepared = prepareStoreWrites(body({ event_id: eventId }), {
      ...ctx,
      refused: new Map([["error", "spike_protection"]]),
    });
    if (!prepared.ok) throw new Error(prepared.detail);
    expect(prepared.refused).toBe(true);
    expect(prepared.writes.events).toEqual([]);
    expect(prepared.writes.outcomes[0]).toMatchObject({
      outcome: "rate_limited",
      category: "error",
      reason: "spike_protection",
    });
  });
});
