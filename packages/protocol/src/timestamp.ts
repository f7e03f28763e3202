/**
 * Reads an event timestamp: an RFC 3339 string (a missing zone means UTC)
 * or seconds since the epoch as a number (develop.sentry.dev
 * sdk/foundations/transport/event-payloads). Null when unreadable.
 */
export function parseTimestamp(value: unknown): Date | null {
  if (typeof value === "number") {
    return Number.isFinite(value) ? validDate(new Date(value * 1000)) : null;
  }
  if (typeof value !== "string" || value === "") return null;
  if (/^\d+(\.\d+)?$/.test(value)) return validDate(new Date(Number(value) * 1000));
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(value);
  return validDate(new Date(hasZone ? value : `${value}Z`));
}

function validDate(date: Date): Date | null {
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Sentry's processing-error types recorded in an event's `errors`. */
export type TimestampError = { type: "clock_drift" | "future_timestamp" | "past_timestamp" };

/** Relay: `max_secs_in_future` (60 s) and the clock-drift threshold (55 min). */
const MAX_FUTURE_MS = 60_000;
const CLOCK_DRIFT_MS = 55 * 60_000;

/**
 * Decides the time an event happened, as Relay's normalization does
 * (relay-event-normalization timestamp and clock-drift processors,
 * docs/protocol.md §6.3): a client clock off by 55 minutes or more, as told
 * by the envelope's `sent_at`, shifts the time; a time more than 60 s ahead
 * of `receivedAt` or older than `maxAgeMs` becomes `receivedAt`; a missing
 * time is `receivedAt`.
 */
export function resolveEventTime(
  rawTimestamp: unknown,
  sentAt: unknown,
  receivedAt: Date,
  maxAgeMs: number,
): { timestamp: Date; errors: TimestampError[] } {
  const errors: TimestampError[] = [];
  let timestamp = parseTimestamp(rawTimestamp);
  if (!timestamp) return { timestamp: receivedAt, errors };
  const sent = parseTimestamp(sentAt);
  if (sent) {
    const drift = receivedAt.getTime() - sent.getTime();
    if (Math.abs(drift) >= CLOCK_DRIFT_MS) {
      timestamp = new Date(timestamp.getTime() + drift);
      errors.push({ type: "clock_drift" });
    }
  }
  if (timestamp.getTime() > receivedAt.getTime() + MAX_FUTURE_MS) {
    errors.push({ type: "future_timestamp" });
    return { timestamp: receivedAt, errors };
  }
  if (timestamp.getTime() < receivedAt.getTime() - maxAgeMs) {
    errors.push({ type: "past_timestamp" });
    return { timestamp: receivedAt, errors };
  }
  return { timestamp, errors };
}
