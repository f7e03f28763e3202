import { isUtf8 } from "node:buffer";
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
  type EventFields,
  itemTypeLabel,
  type Limits,
  newEventId,
  normalizeEventId,
  parseBoundedJson,
  parseEventJson,
  resolveEventTime,
  scanEventFields,
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
  /**
   * Data categories refused by a rate limit or quota, each with its reason
   * code: their items are counted `rate_limited` and not stored
   * (`envelopeQuantities` says what was asked).
   */
  refused?: ReadonlyMap<string, string>;
};

export type PreparedWrites =
  | {
      ok: true;
      writes: IngestBatch;
      eventId: string | null;
      /** (item type label, outcome) pairs for metrics; labels come from a closed set. */
      itemOutcomes: [string, string][];
      /** True when a rate limit refused items and nothing but client reports was kept (a 429). */
      allRefused: boolean;
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
    allRefused: plan.allRefused,
  };
}

/**
 * What an envelope asks the quotas for, per data category, in Relay's units
 * (`EnvelopeSummary` in relay-server/src/utils/rate_limits.rs): 1 for the
 * event (`error`), the bytes of all attachments (`attachment`) and their
 * count (`attachment_item`), 1 per other item of a known category. Client
 * reports (`internal`) and unknown items are never limited.
 */
export function envelopeQuantities(envelope: Envelope, limits: Limits): Map<string, number> {
  const quantities = new Map<string, number>();
  const add = (category: string, n: number) =>
    quantities.set(category, (quantities.get(category) ?? 0) + n);
  let event = false;
  for (const item of envelope.items) {
    const type = item.headers.type;
    if (type === "event") {
      if (!event) add("error", 1);
      event = true;
    } else if (type === "attachment") {
      add("attachment", Math.min(item.payload.length, limits.maxAttachmentsBytes));
      add("attachment_item", 1);
    } else {
      const category = dataCategoryOf(type);
      if (category !== "internal" && category !== "unknown") add(category, 1);
    }
  }
  return quantities;
}

export type PreparedStoreWrites =
  | {
      ok: true;
      writes: IngestBatch;
      eventId: string;
      /** The item type label for metrics. */
      itemType: "event" | "transaction";
      /** The body's category, for the quota check. */
      category: "error" | "transaction";
      /** True when a rate limit refused the body (counted `rate_limited`, not stored). */
      refused: boolean;
    }
  | { ok: false; status: 400; detail: string };

/**
 * Turns a `/store/` body (one event's JSON, already decoded) into the rows
 * one group commit stores: an error event is stored with an `accepted`
 * outcome under `error`; a transaction is counted under `transaction` and
 * not stored, as envelope transactions are. A body that is not an event
 * is a 400. When `ctx.refused` names the body's category, the body is
 * counted `rate_limited` with that reason code and not stored.
 */
export function prepareStoreWrites(body: Buffer, ctx: IngestContext): PreparedStoreWrites {
  const parsed = parseEventItem(body, null, undefined, ctx);
  if (!parsed.ok) return { ok: false, status: 400, detail: `invalid event: ${parsed.detail}` };
  const isTransaction = parsed.type === "transaction";
  const category = isTransaction ? "transaction" : "error";
  const reason = ctx.refused?.get(category);
  const refused = reason !== undefined;
  return {
    ok: true,
    writes: {
      events: isTransaction || refused ? [] : [eventRow(parsed.event, ctx)],
      attachments: [],
      outcomes: [
        {
          projectId: ctx.projectId,
          hour: outcomeHour(ctx.receivedAt),
          outcome: refused ? "rate_limited" : "accepted",
          category,
          reason: reason ?? "",
          quantity: 1,
        },
      ],
    },
    eventId: parsed.event.row.eventId,
    itemType: isTransaction ? "transaction" : "event",
    category,
    refused,
  };
}

/**
 * The `/store/` body's category before the quota check: `transaction` when
 * the JSON says so near its start or anywhere (a cheap scan, not a parse;
 * `prepareStoreWrites` decides for real and counts what it parsed).
 */
export function storeBodyCategory(body: Buffer): "error" | "transaction" {
  return /"type"\s*:\s*"transaction"/.test(body.toString("latin1")) ? "transaction" : "error";
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
      allRefused: boolean;
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
  const refused = ctx.refused ?? NOTHING_REFUSED;
  let refusedItems = 0;
  let keptItems = 0;
  let parsedEventId: string | null = null;
  for (const item of envelope.items) {
    if (item.headers.type !== "event") continue;
    if (events.length > 0 || parsedEventId !== null) {
      counts.add("invalid", "error", "duplicate_item", 1);
      itemOutcomes.push(["event", "invalid"]);
      continue;
    }
    const parsed = parseEventItem(item.payload, headerEventId, envelope.headers.sent_at, ctx);
    if (!parsed.ok)
      return { ok: false, status: 400, detail: `invalid event item: ${parsed.detail}` };
    parsedEventId = parsed.event.row.eventId;
    const reason = refused.get("error");
    if (reason !== undefined) {
      counts.add("rate_limited", "error", reason, 1);
      itemOutcomes.push(["event", "rate_limited"]);
      refusedItems++;
      continue;
    }
    events.push(eventRow(parsed.event, ctx));
    keptItems++;
    counts.add("accepted", "error", "", 1);
    itemOutcomes.push(["event", "accepted"]);
  }
  const eventId = headerEventId ?? parsedEventId;

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
      const reason = refused.get("attachment") ?? refused.get("attachment_item");
      if (reason !== undefined) {
        counts.add("rate_limited", "attachment", reason, item.payload.length);
        counts.add("rate_limited", "attachment_item", reason, 1);
        itemOutcomes.push([label, "rate_limited"]);
        refusedItems++;
        continue;
      }
      keptItems++;
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
      const reason = refused.get(category);
      if (reason !== undefined) {
        counts.add("rate_limited", category, reason, 1);
        itemOutcomes.push([label, "rate_limited"]);
        refusedItems++;
        continue;
      }
      keptItems++;
      counts.add("accepted", category, "", 1);
    }
    itemOutcomes.push([label, "accepted"]);
  }
  return {
    ok: true,
    events,
    attachments,
    outcomes: counts.rows(),
    eventId,
    itemOutcomes,
    allRefused: refusedItems > 0 && keptItems === 0,
  };
}

const NOTHING_REFUSED: ReadonlyMap<string, string> = new Map();

/**
 * Parses one event payload (an envelope `event` item or a `/store/` body):
 * the envelope header's `event_id` wins over the payload's, a missing one is
 * generated, and the event time is resolved as Relay does. The usual payload
 * is read by `scanEventFields` and stored as received; one it leaves alone
 * goes through `parseEventJson`, which refuses or rewrites it.
 */
function parseEventItem(
  payload: Buffer,
  headerEventId: string | null,
  sentAt: unknown,
  ctx: IngestContext,
): { ok: true; event: ParsedEvent; type: unknown } | { ok: false; detail: string } {
  const read = readEventPayload(payload, ctx.limits.maxJsonDepth);
  if (!read.ok) return read;
  const { fields } = read;
  let eventId = headerEventId;
  if (!eventId) {
    const own = fields.event_id;
    if (own !== undefined && own !== null) {
      eventId = normalizeEventId(own);
      if (!eventId) return { ok: false, detail: "invalid event_id" };
    } else {
      eventId = newEventId();
    }
  }
  const { timestamp } = resolveEventTime(
    fields.timestamp,
    sentAt,
    ctx.receivedAt,
    ctx.maxEventAgeMs,
  );
  return {
    ok: true,
    type: fields.type,
    event: {
      row: {
        projectId: ctx.projectId,
        eventId,
        receivedAt: ctx.receivedAt,
        timestamp,
        keyId: ctx.keyId,
      },
      stored: read.stored,
    },
  };
}

/** A parsed event whose payload is not in its row yet: `stored`, the JSON to store. */
type ParsedEvent = {
  row: Omit<EventRow, "payloadText" | "payloadCompressed">;
  stored: Buffer | string;
};

/**
 * The row of an event that will be stored, its payload compressed or as
 * text as `ctx.payloadStorage` says; called only for kept events, so a
 * refused one costs no compression.
 */
function eventRow(event: ParsedEvent, ctx: IngestContext): EventRow {
  const { stored } = event;
  if (ctx.payloadStorage !== "jsonb")
    return { ...event.row, payloadCompressed: compressPayload(stored, ctx.payloadStorage) };
  return {
    ...event.row,
    payloadText: typeof stored === "string" ? stored : stored.toString("utf8"),
  };
}

/** `stored`: the JSON to store, the bytes as received or `parseEventJson`'s text. */
type ReadPayload =
  | { ok: true; fields: EventFields; stored: Buffer | string }
  | { ok: false; detail: string };

/**
 * An event payload's fields, and what to store: the bytes as received when
 * `scanEventFields` read them, else `parseEventJson`'s text.
 */
function readEventPayload(payload: Buffer, maxDepth: number): ReadPayload {
  const fields = isUtf8(payload) ? scanEventFields(payload, maxDepth) : null;
  if (fields) return { ok: true, fields, stored: payload };
  const json = parseEventJson(payload.toString("utf8"), maxDepth);
  if (!json.ok) return json;
  const { event_id, timestamp, type } = json.value;
  return { ok: true, fields: { event_id, timestamp, type }, stored: json.text };
}

/**
 * The first size limit the envelope's items break (Relay's `max_*` limits,
 * docs/protocol.md §4.2), as the 413's detail, or null. Checked before the
 * quotas, so a refused envelope consumes none.
 */
export function checkLimits(items: EnvelopeItem[], limits: Limits): string | null {
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
 * A client report's lists and the outcome each becomes, as Relay reads
 * them (`ClientReport` in relay-event-schema/src/protocol/client_report.rs,
 * turned into outcomes in relay-server/src/services/outcome.rs): SDKs fill
 * only `discarded_events`; the other lists come from Relays in front of
 * Sluice, which report what they refused or filtered themselves.
 */
const CLIENT_REPORT_LISTS: [string, string][] = [
  ["discarded_events", "client_discard"],
  ["rate_limited_events", "rate_limited"],
  ["filtered_events", "filtered"],
  ["filtered_sampling_events", "filtered_sampling"],
];

/**
 * Adds a client report's entries to the outcomes (`CLIENT_REPORT_LISTS`).
 * A report that is too large, too deep or not JSON is ignored, as is any
 * malformed entry; at most 100 entries are read in all; each quantity is
 * clamped to `MAX_DISCARD_QUANTITY`.
 */
function countClientReport(payload: Buffer, counts: OutcomeCounter) {
  const parsed = parseBoundedJson(payload, MAX_CLIENT_REPORT_BYTES, MAX_CLIENT_REPORT_DEPTH);
  if (!parsed.ok) return;
  const report = (parsed.value ?? {}) as Record<string, unknown>;
  let budget = 100;
  for (const [list, outcome] of CLIENT_REPORT_LISTS) {
    const entries = Object.hasOwn(report, list) ? report[list] : undefined;
    if (!Array.isArray(entries)) continue;
    for (const entry of entries.slice(0, budget)) {
      budget--;
      const { reason, category, quantity } = (entry ?? {}) as Record<string, unknown>;
      if (typeof reason !== "string" || typeof category !== "string") continue;
      const n =
        typeof quantity === "number" && Number.isFinite(quantity)
          ? Math.min(MAX_DISCARD_QUANTITY, Math.max(0, Math.floor(quantity)))
          : 0;
      if (n > 0) counts.add(outcome, outcomeLabel(category), outcomeLabel(reason), n);
    }
    if (budget <= 0) return;
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
