import {
  type AttachmentRow,
  compressPayload,
  type EventRow,
  type IngestBatch,
  type OutcomeRow,
  outcomeHour,
  type PayloadStorage,
} from "@sluice/db";
import {
  dataCategoryOf,
  type Envelope,
  type EnvelopeItem,
  itemTypeLabel,
  type Limits,
  newEventId,
  normalizeEventId,
  parseBoundedJson,
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
  | {
      ok: true;
      writes: IngestBatch;
      eventId: string | null;
      /** (item type label, outcome) pairs for metrics; labels come from a closed set. */
      itemOutcomes: [string, string][];
    }
  | { ok: false; status: 400 | 413; detail: string };

const EVENT_LIKE = new Set(["event", "transaction", "feedback", "user_report", "security"]);
const SESSION_TYPES = new Set(["session", "sessions"]);

/**
 * Bytes of one client report. Relay refuses envelopes whose client reports
 * pass 4 KiB together (`max_client_reports_size`, relay-config/src/config.rs);
 * Sluice ignores a larger one rather than lose the envelope's event with it.
 */
const MAX_CLIENT_REPORT_BYTES = 4 * 1024;
const MAX_CLIENT_REPORT_DEPTH = 8;
/** Largest quantity one client report entry counts; counters saturate past 2^63-1 anyway. */
const MAX_DISCARD_QUANTITY = 2 ** 31 - 1;
/** Attachment header strings: stored as text (no NUL), and bounded like Sentry's columns. */
const MAX_ATTACHMENT_NAME_CHARS = 1024;
const MAX_ATTACHMENT_CONTENT_TYPE_CHARS = 256;
const MAX_ATTACHMENT_TYPE_CHARS = 64;

/**
 * Turns a parsed envelope into the rows one group commit stores. Checks every
 * limit and every attachment header before anything is written (a 413 names
 * the item type, per Relay's `max_*` limits; a bad attachment header is a
 * 400), so that a refused request leaves no blob behind; then writes
 * attachments to the blob store and links them to the envelope's event.
 * Stores `event` items as events; reads client reports into `client_discard`
 * outcomes (develop.sentry.dev sdk/telemetry/client-reports); counts every
 * other item, known or not, as an outcome under its data category.
 */
export async function prepareEnvelopeWrites(
  envelope: Envelope,
  ctx: IngestContext,
): Promise<PreparedWrites> {
  const plan = planEnvelopeWrites(envelope, ctx);
  if (!plan.ok) return plan;
  const attachments: AttachmentRow[] = [];
  for (const { item, row } of plan.attachments) {
    const { key, sha1 } = await unavailableOnThrow(() =>
      ctx.blobs.put(`attachments/${ctx.projectId}`, item.payload),
    );
    attachments.push({ ...row, sha1, blobKey: key });
  }
  return {
    ok: true,
    writes: { events: plan.events, attachments, outcomes: plan.outcomes },
    eventId: plan.eventId,
    itemOutcomes: plan.itemOutcomes,
  };
}

export type PreparedStoreWrites =
  | {
      ok: true;
      writes: IngestBatch;
      eventId: string;
      /** The item type label for metrics. */
      itemType: "event" | "transaction";
    }
  | { ok: false; status: 400; detail: string };

/**
 * Turns a `/store/` body (one event's JSON, already decoded) into the rows
 * one group commit stores: an error event is stored with an `accepted`
 * outcome under `error`; a transaction is counted under `transaction` and
 * not stored, as envelope transactions are. A body that is not an event
 * is a 400.
 */
export function prepareStoreWrites(body: Buffer, ctx: IngestContext): PreparedStoreWrites {
  const parsed = parseEventItem(body, null, undefined, ctx);
  if (!parsed.ok) return { ok: false, status: 400, detail: `invalid event: ${parsed.detail}` };
  const isTransaction = parsed.type === "transaction";
  const category = isTransaction ? "transaction" : "error";
  return {
    ok: true,
    writes: {
      events: isTransaction ? [] : [parsed.row],
      attachments: [],
      outcomes: [
        {
          projectId: ctx.projectId,
          hour: outcomeHour(ctx.receivedAt),
          outcome: "accepted",
          category,
          reason: "",
          quantity: 1,
        },
      ],
    },
    eventId: parsed.row.eventId,
    itemType: isTransaction ? "transaction" : "event",
  };
}

/**
 * The outcome of a request shed for want of room (503): one `invalid`
 * outcome with reason `internal`, which is what Relay records for an
 * envelope it cannot queue (`BadStoreRequest::QueueFailed` in
 * relay-server/src/endpoints/common.rs), under `category`: `unknown` for
 * an envelope (its items are unread), `error` for a `/store/` body.
 */
export function prepareShedWrites(
  projectId: number,
  category: "error" | "unknown",
  at: number,
): IngestBatch {
  return {
    events: [],
    attachments: [],
    outcomes: [
      {
        projectId,
        hour: outcomeHour(at),
        outcome: "invalid",
        category,
        reason: "internal",
        quantity: 1,
      },
    ],
  };
}

/**
 * A failure of a dependency (database, blob store), as opposed to a problem
 * with the request: ingest answers it 503 so the SDK retries later. Any other
 * error while handling a request is a problem with that input and gets a 400,
 * since retrying the same bytes cannot help.
 */
export class StorageUnavailableError extends Error {
  constructor(cause: unknown) {
    super("storage unavailable", { cause });
    this.name = "StorageUnavailableError";
  }
}

/** Runs an I/O step, turning what it throws into a `StorageUnavailableError`. */
export async function unavailableOnThrow<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw new StorageUnavailableError(error);
  }
}

type PlannedAttachment = { item: EnvelopeItem; row: Omit<AttachmentRow, "sha1" | "blobKey"> };

type EnvelopePlan =
  | {
      ok: true;
      events: EventRow[];
      attachments: PlannedAttachment[];
      outcomes: OutcomeRow[];
      eventId: string | null;
      itemOutcomes: [string, string][];
    }
  | { ok: false; status: 400 | 413; detail: string };

/** Everything `prepareEnvelopeWrites` decides, without I/O; any refusal happens here. */
function planEnvelopeWrites(envelope: Envelope, ctx: IngestContext): EnvelopePlan {
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

  const attachments: PlannedAttachment[] = [];
  for (const item of envelope.items) {
    const type = item.headers.type;
    const label = itemTypeLabel(type);
    if (type === "event") continue;
    if (type === "attachment") {
      const row = attachmentRow(item, ctx.projectId, eventId ?? "");
      if (!row.ok) return { ok: false, status: 400, detail: row.detail };
      if (!eventId) {
        counts.add("invalid", "attachment", "missing_event_id", 1);
        itemOutcomes.push([label, "invalid"]);
        continue;
      }
      attachments.push({ item, row: row.row });
      counts.add("accepted", "attachment", "", item.payload.length);
      counts.add("accepted", "attachment_item", "", 1);
    } else if (type === "client_report") {
      countClientReport(item.payload, counts);
    } else {
      const category = dataCategoryOf(type);
      if (category === "unknown") {
        counts.add("filtered", "unknown", "unknown_item_type", 1);
        itemOutcomes.push([label, "filtered"]);
        continue;
      }
      counts.add("accepted", category, "", 1);
    }
    itemOutcomes.push([label, "accepted"]);
  }
  return { ok: true, events, attachments, outcomes: counts.rows(), eventId, itemOutcomes };
}

/**
 * Parses one event payload (an envelope `event` item or a `/store/` body):
 * the envelope header's `event_id` wins over the payload's, a missing one is
 * generated, and the event time is resolved as Relay does.
 */
function parseEventItem(
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

/**
 * The attachment row of an item, its header strings checked first: each of
 * `filename`, `content_type` and `attachment_type` is absent or a string
 * without NUL (Postgres text refuses it) and of bounded length. Relay also
 * refuses an item header whose fields have the wrong type.
 */
function attachmentRow(
  item: EnvelopeItem,
  projectId: number,
  eventId: string,
): { ok: true; row: PlannedAttachment["row"] } | { ok: false; detail: string } {
  const filename = headerString(item, "filename", MAX_ATTACHMENT_NAME_CHARS);
  if (!filename.ok) return filename;
  const contentType = headerString(item, "content_type", MAX_ATTACHMENT_CONTENT_TYPE_CHARS);
  if (!contentType.ok) return contentType;
  const attachmentType = headerString(item, "attachment_type", MAX_ATTACHMENT_TYPE_CHARS);
  if (!attachmentType.ok) return attachmentType;
  return {
    ok: true,
    row: {
      projectId,
      eventId,
      filename: filename.value?.split(/[/\\]/).pop() || "attachment",
      contentType: contentType.value ?? "application/octet-stream",
      attachmentType: attachmentType.value ?? "event.attachment",
      size: item.payload.length,
    },
  };
}

function headerString(
  item: EnvelopeItem,
  name: "filename" | "content_type" | "attachment_type",
  maxChars: number,
): { ok: true; value: string | undefined } | { ok: false; detail: string } {
  const value: unknown = item.headers[name];
  if (value === undefined || value === null) return { ok: true, value: undefined };
  if (typeof value !== "string")
    return { ok: false, detail: `attachment ${name} must be a string` };
  if (value.length > maxChars) {
    return { ok: false, detail: `attachment ${name} is longer than ${maxChars} characters` };
  }
  if (value.includes("\u0000")) return { ok: false, detail: `attachment ${name} contains NUL` };
  return { ok: true, value };
}

/**
 * Adds a client report's discarded events to the outcomes. A report that is
 * too large, too deep or not JSON is ignored, as is any malformed entry; each
 * quantity is clamped to `MAX_DISCARD_QUANTITY`.
 */
function countClientReport(payload: Buffer, counts: OutcomeCounter) {
  const parsed = parseBoundedJson(payload, MAX_CLIENT_REPORT_BYTES, MAX_CLIENT_REPORT_DEPTH);
  if (!parsed.ok) return;
  const report = parsed.value;
  const discarded = (report as { discarded_events?: unknown })?.discarded_events;
  if (!Array.isArray(discarded)) return;
  for (const entry of discarded.slice(0, 100)) {
    const { reason, category, quantity } = (entry ?? {}) as Record<string, unknown>;
    if (typeof reason !== "string" || typeof category !== "string") continue;
    const n =
      typeof quantity === "number" && Number.isFinite(quantity)
        ? Math.min(MAX_DISCARD_QUANTITY, Math.max(0, Math.floor(quantity)))
        : 0;
    if (n > 0) counts.add("client_discard", outcomeLabel(category), outcomeLabel(reason), n);
  }
}

/** A client-supplied outcome category or reason as stored: bounded, without NUL. */
function outcomeLabel(value: string): string {
  return value.slice(0, 64).replaceAll("\u0000", "");
}

/** Outcome increments of one request, keyed by (outcome, category, reason). */
class OutcomeCounter {
  private readonly counts = new Map<string, OutcomeRow>();
  private readonly hour: Date;

  constructor(
    private readonly projectId: number,
    receivedAt: Date,
  ) {
    this.hour = outcomeHour(receivedAt);
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
