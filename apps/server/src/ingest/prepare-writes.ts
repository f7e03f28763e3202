import {
  type AttachmentRow,
  compressPayload,
  type EventRow,
  type IngestBatch,
  type OutcomeRow,
  type PayloadStorage,
} from "@sluice/db";
import {
  dataCategoryOf,
  type Envelope,
  type EnvelopeItem,
  type Limits,
  newEventId,
  normalizeEventId,
  parseEventJson,
  resolveEventTime,
} from "@sluice/protocol";
import type { BlobStore } from "@sluice/storage";

export type IngestContext = {
  projectId: number;
  keyId: number;
  receivedAt: Date;
  limits: Limits;
  /** Events older than this are dated `receivedAt` (ms). */
  maxEventAgeMs: number;
  blobs: BlobStore;
  /** How event payloads are stored (SLUICE_PAYLOAD_STORAGE). */
  payloadStorage: PayloadStorage;
};

export type PreparedWrites =
  | { ok: true; writes: IngestBatch; eventId: string | null; itemOutcomes: [string, string][] }
  | { ok: false; status: 400 | 413; detail: string };

const EVENT_LIKE = new Set(["event", "transaction", "feedback", "user_report", "security"]);
const SESSION_TYPES = new Set(["session", "sessions"]);

/**
 * Turns a parsed envelope into the rows one group commit stores. Checks every
 * limit before anything is written (a 413 names the item type, per Relay's
 * `max_*` limits); stores `event` items as events; writes attachments to the
 * blob store and links them to the envelope's event; reads client reports
 * into `client_discard` outcomes (develop.sentry.dev sdk/telemetry/
 * client-reports); counts every other item, known or not, as an accepted
 * outcome under its data category. `itemOutcomes` are (item type, outcome)
 * pairs for metrics.
 */
export async function prepareEnvelopeWrites(
  envelope: Envelope,
  ctx: IngestContext,
): Promise<PreparedWrites> {
  const limitProblem = checkLimits(envelope.items, ctx.limits);
  if (limitProblem) return { ok: false, status: 413, detail: limitProblem };

  let headerEventId: string | null = null;
  if (envelope.headers.event_id !== undefined && envelope.headers.event_id !== null) {
    headerEventId = normalizeEventId(envelope.headers.event_id);
    if (!headerEventId)
      return { ok: false, status: 400, detail: "invalid event_id in envelope header" };
  }

  const events: EventRow[] = [];
  const counts = new OutcomeCounter(ctx.projectId, ctx.receivedAt);
  const itemOutcomes: [string, string][] = [];
  for (const item of envelope.items) {
    if (item.headers.type !== "event") continue;
    if (events.length > 0) {
      counts.add("invalid", "error", "duplicate_item", 1);
      itemOutcomes.push(["event", "invalid"]);
      continue;
    }
    const parsed = parseEventItem(item.payload, headerEventId, envelope.headers.sent_at, ctx);
    if (!parsed.ok)
      return { ok: false, status: 400, detail: `invalid event item: ${parsed.detail}` };
    events.push(parsed.row);
    counts.add("accepted", "error", "", 1);
    itemOutcomes.push(["event", "accepted"]);
  }
  const eventId = headerEventId ?? events[0]?.eventId ?? null;

  const attachments: AttachmentRow[] = [];
  for (const item of envelope.items) {
    const type = item.headers.type;
    if (type === "event") continue;
    if (type === "attachment") {
      if (!eventId) {
        counts.add("invalid", "attachment", "missing_event_id", 1);
        itemOutcomes.push([type, "invalid"]);
        continue;
      }
      attachments.push(await storeAttachment(item, eventId, ctx));
      counts.add("accepted", "attachment", "", item.payload.length);
      counts.add("accepted", "attachment_item", "", 1);
    } else if (type === "client_report") {
      countClientReport(item.payload, counts);
    } else {
      const category = dataCategoryOf(type);
      if (category === "unknown") {
        counts.add("filtered", "unknown", "unknown_item_type", 1);
        itemOutcomes.push([type, "filtered"]);
        continue;
      }
      counts.add("accepted", category, "", 1);
    }
    itemOutcomes.push([type, "accepted"]);
  }
  return {
    ok: true,
    writes: { events, attachments, outcomes: counts.rows() },
    eventId,
    itemOutcomes,
  };
}

/**
 * Parses one event payload (an envelope `event` item or a `/store/` body):
 * the envelope header's `event_id` wins over the payload's, a missing one is
 * generated, and the event time is resolved as Relay does.
 */
export function parseEventItem(
  payload: Buffer,
  headerEventId: string | null,
  sentAt: unknown,
  ctx: IngestContext,
): { ok: true; row: EventRow; type: unknown } | { ok: false; detail: string } {
  const json = parseEventJson(payload.toString("utf8"), ctx.limits.maxJsonDepth);
  if (!json.ok) return json;
  let eventId = headerEventId;
  if (!eventId) {
    const own = json.value.event_id;
    if (own !== undefined && own !== null) {
      eventId = normalizeEventId(own);
      if (!eventId) return { ok: false, detail: "invalid event_id" };
    } else {
      eventId = newEventId();
    }
  }
  const { timestamp } = resolveEventTime(
    json.value.timestamp,
    sentAt,
    ctx.receivedAt,
    ctx.maxEventAgeMs,
  );
  return {
    ok: true,
    type: json.value.type,
    row: {
      projectId: ctx.projectId,
      eventId,
      receivedAt: ctx.receivedAt,
      timestamp,
      keyId: ctx.keyId,
      payloadText: json.text,
      payloadCompressed:
        ctx.payloadStorage === "compressed" ? compressPayload(json.text) : undefined,
    },
  };
}

function checkLimits(items: EnvelopeItem[], limits: Limits): string | null {
  let attachmentCount = 0;
  let attachmentBytes = 0;
  let sessionCount = 0;
  for (const { headers, payload } of items) {
    const type = headers.type;
    if (EVENT_LIKE.has(type) && payload.length > limits.maxEventBytes) {
      return `${type} item is larger than ${limits.maxEventBytes} bytes`;
    }
    if (type === "attachment") {
      attachmentCount++;
      attachmentBytes += payload.length;
      if (payload.length > limits.maxAttachmentBytes) {
        return `attachment item is larger than ${limits.maxAttachmentBytes} bytes`;
      }
    } else if (!EVENT_LIKE.has(type) && payload.length > limits.maxItemBytes) {
      return `${type} item is larger than ${limits.maxItemBytes} bytes`;
    }
    if (SESSION_TYPES.has(type)) sessionCount++;
  }
  if (attachmentCount > limits.maxAttachmentCount) {
    return `more than ${limits.maxAttachmentCount} attachment items`;
  }
  if (attachmentBytes > limits.maxAttachmentsBytes) {
    return `attachment items are larger than ${limits.maxAttachmentsBytes} bytes together`;
  }
  if (sessionCount > limits.maxSessionCount)
    return `more than ${limits.maxSessionCount} session items`;
  return null;
}

async function storeAttachment(
  item: EnvelopeItem,
  eventId: string,
  ctx: IngestContext,
): Promise<AttachmentRow> {
  const { key, sha1 } = await ctx.blobs.put(`attachments/${ctx.projectId}`, item.payload);
  const filename = typeof item.headers.filename === "string" ? item.headers.filename : "attachment";
  return {
    projectId: ctx.projectId,
    eventId,
    filename: filename.split(/[/\\]/).pop() || "attachment",
    contentType: item.headers.content_type ?? "application/octet-stream",
    attachmentType: item.headers.attachment_type ?? "event.attachment",
    size: item.payload.length,
    sha1,
    blobKey: key,
  };
}

function countClientReport(payload: Buffer, counts: OutcomeCounter) {
  let report: unknown;
  try {
    report = JSON.parse(payload.toString("utf8"));
  } catch {
    return;
  }
  const discarded = (report as { discarded_events?: unknown })?.discarded_events;
  if (!Array.isArray(discarded)) return;
  for (const entry of discarded.slice(0, 100)) {
    const { reason, category, quantity } = (entry ?? {}) as Record<string, unknown>;
    if (typeof reason !== "string" || typeof category !== "string") continue;
    const n =
      typeof quantity === "number" && Number.isFinite(quantity)
        ? Math.max(0, Math.floor(quantity))
        : 0;
    if (n > 0) counts.add("client_discard", category.slice(0, 64), reason.slice(0, 64), n);
  }
}

/** Outcome increments of one request, keyed by (outcome, category, reason). */
class OutcomeCounter {
  private readonly counts = new Map<string, OutcomeRow>();
  private readonly hour: Date;

  constructor(
    private readonly projectId: number,
    receivedAt: Date,
  ) {
    this.hour = new Date(Math.floor(receivedAt.getTime() / 3_600_000) * 3_600_000);
  }

  add(outcome: string, category: string, reason: string, quantity: number) {
    const key = `${outcome}\u0000${category}\u0000${reason}`;
    const row = this.counts.get(key);
    if (row) row.quantity += quantity;
    else
      this.counts.set(key, {
        projectId: this.projectId,
        hour: this.hour,
        outcome,
        category,
        reason,
        quantity,
      });
  }

  rows(): OutcomeRow[] {
    return [...this.counts.values()];
  }
}
