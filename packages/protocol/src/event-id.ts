const HEX32 = /^[0-9a-f]{32}$/;
const DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Normalizes an event id to 32 lowercase hex characters, accepting the plain
 * and the dashed UUID forms (docs/protocol.md §3.1 rule 6, Relay `EventId`).
 * Returns null for anything else.
 */
export function normalizeEventId(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const lower = value.trim().toLowerCase();
  if (HEX32.test(lower)) return lower;
  if (DASHED.test(lower)) return lower.replaceAll("-", "");
  return null;
}

/** A new random event id: 32 lowercase hex characters (uuid4 without dashes). */
export function newEventId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}
