import type { Queryable } from "../database.ts";

/**
 * One event to store, with its payload either as `payloadText`, JSON text
 * that Postgres `jsonb` accepts, stored in `payload`; or as
 * `payloadCompressed` (`compressPayload` of such text), stored in
 * `payload_compressed`, with `payload` JSON null (event-payload.ts).
 */
export type EventRow = {
  projectId: number;
  /** 32 lowercase hex characters. */
  eventId: string;
  receivedAt: Date;
  timestamp: Date;
  keyId: number;
} & (
  | { payloadText: string; payloadCompressed?: never }
  | { payloadCompressed: Buffer; payloadText?: never }
);

export type AttachmentRow = {
  projectId: number;
  eventId: string;
  filename: string;
  contentType: string;
  attachmentType: string;
  /** Bytes. */
  size: number;
  sha1: string;
  blobKey: string;
};

/** An increment of one outcome counter (per project, hour, outcome, category, reason). */
export type OutcomeRow = {
  projectId: number;
  hour: Date;
  outcome: string;
  category: string;
  reason: string;
  quantity: number;
};

const HOUR_MS = 3_600_000;

/**
 * The hour an outcome counts in, as `outcomes.hour` holds it: `at`
 * (a Date or epoch ms) truncated to the whole UTC hour.
 */
export function outcomeHour(at: Date | number): Date {
  const ms = typeof at === "number" ? at : at.getTime();
  return new Date(Math.floor(ms / HOUR_MS) * HOUR_MS);
}

export type IngestBatch = {
  events: EventRow[];
  attachments: AttachmentRow[];
  outcomes: OutcomeRow[];
};

/** An event this batch stored for the first time (not a retry). */
export type StoredEvent = { projectId: number; eventId: string; receivedAt: Date };

/**
 * Stores a group commit in one statement, so in one implicit transaction and
 * one round trip: events are inserted only where `event_ids` took their
 * `(project, event_id)` (a retry stores nothing and still succeeds),
 * attachments are idempotent on (project, event, filename, sha1), outcome
 * counters are added to, saturating at 2^63-1. Rows are passed as three JSON parameters read by
 * `json_to_recordset`, the cheapest multi-row path from Node measured here
 * (docs/architecture.md §3.4). The caller must pass events unique by
 * (project, event_id) and outcomes unique by key, sorted (no deadlocks).
 * Returns the events stored for the first time. Throws the database error.
 */
export async function insertIngestBatch(db: Queryable, batch: IngestBatch): Promise<StoredEvent[]> {
  const result = await db.query({
    name: "sluice_insert_ingest_batch_3",
    text: INSERT_BATCH,
    values: [
      eventsJson(batch.events),
      JSON.stringify(attachmentRecords(batch)),
      JSON.stringify(outcomeRecords(batch)),
    ],
  });
  return result.rows.map((row) => ({
    projectId: Number(row.project_id),
    eventId: (row.event_id as string).replaceAll("-", ""),
    receivedAt: row.received_at as Date,
  }));
}

function eventsJson(events: EventRow[]): string {
  const parts = events.map((e) => {
    const payload =
      e.payloadCompressed !== undefined
        ? `"payload_compressed":"${e.payloadCompressed.toString("base64")}"`
        : `"payload":${e.payloadText}`;
    return `{"project_id":${e.projectId},"event_id":"${e.eventId}","received_at":"${e.receivedAt.toISOString()}","timestamp":"${e.timestamp.toISOString()}","key_id":${e.keyId},${payload}}`;
  });
  return `[${parts.join(",")}]`;
}

function attachmentRecords(batch: IngestBatch) {
  return batch.attachments.map((a) => ({
    project_id: a.projectId,
    event_id: a.eventId,
    filename: a.filename,
    content_type: a.contentType,
    attachment_type: a.attachmentType,
    size: a.size,
    sha1: a.sha1,
    blob_key: a.blobKey,
  }));
}

function outcomeRecords(batch: IngestBatch) {
  return batch.outcomes.map((o) => ({
    project_id: o.projectId,
    hour: o.hour.toISOString(),
    outcome: o.outcome,
    category: o.category,
    reason: o.reason,
    quantity: o.quantity,
  }));
}

/** Outcome counters saturate at bigint's maximum instead of failing the statement (and its events). */
const MAX_BIGINT = "9223372036854775807";

const INSERT_BATCH = `
WITH ev AS (
  SELECT * FROM json_to_recordset($1::json) AS x(
    project_id bigint, event_id uuid, received_at timestamptz, "timestamp" timestamptz,
    key_id bigint, payload jsonb, payload_compressed text)
), fresh AS (
  INSERT INTO event_ids (project_id, event_id, received_at)
  SELECT project_id, event_id, received_at FROM ev
  ON CONFLICT DO NOTHING
  RETURNING project_id, event_id
), stored AS (
  INSERT INTO events (project_id, event_id, received_at, "timestamp", key_id, payload, payload_compressed)
  SELECT ev.project_id, ev.event_id, ev.received_at, ev."timestamp", ev.key_id,
         COALESCE(ev.payload, 'null'::jsonb), decode(ev.payload_compressed, 'base64')
    FROM ev JOIN fresh USING (project_id, event_id)
  RETURNING project_id, event_id, received_at
), attached AS (
  INSERT INTO attachments (project_id, event_id, filename, content_type, attachment_type, size, sha1, blob_key)
  SELECT * FROM json_to_recordset($2::json) AS a(
    project_id bigint, event_id uuid, filename text, content_type text, attachment_type text,
    size bigint, sha1 text, blob_key text)
  ON CONFLICT DO NOTHING
  RETURNING 1
), counted AS (
  INSERT INTO outcomes AS o (project_id, hour, outcome, category, reason, quantity)
  SELECT c.project_id, c.hour, c.outcome, c.category, c.reason,
         LEAST(GREATEST(c.quantity, 0), ${MAX_BIGINT})::bigint
    FROM json_to_recordset($3::json) AS c(
    project_id bigint, hour timestamptz, outcome text, category text, reason text, quantity numeric)
  ON CONFLICT (project_id, hour, outcome, category, reason)
    DO UPDATE SET quantity = LEAST(o.quantity::numeric + excluded.quantity, ${MAX_BIGINT})::bigint
  RETURNING 1
)
SELECT project_id, event_id::text AS event_id, received_at FROM stored`;
