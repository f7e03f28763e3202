import { describe, expect, it } from "vitest";
import { parseTimestamp, resolveEventTime } from "./timestamp.ts";

const received = new Date("2026-11-23T12:00:00.000Z");
const DAY = 86_400_000;

describe("event timestamps", () => {
  it("reads RFC 3339 strings, zone-less strings as UTC, and epoch seconds", () => {
    expect(parseTimestamp("2026-11-23T11:59:00.5Z")?.toISOString()).toBe(
      "2026-11-23T11:59:00.500Z",
    );
    expect(parseTimestamp("2026-11-23T11:59:00")?.toISOString()).toBe("2026-11-23T11:59:00.000Z");
    expect(parseTimestamp(1795467762.865)?.toISOString()).toBe("2026-11-23T21:02:42.865Z");
    expect(parseTimestamp("garbage")).toBeNull();
  });

  it("clamps future and too-old times to the receive time, as Relay does", () => {
    expect(resolveEventTime("2026-11-23T12:05:00Z", undefined, received, 90 * DAY)).toEqual({
      timestamp: received,
      errors: [{ type: "future_timestamp" }],
    });
    expect(resolveEventTime("2025-01-01T00:00:00Z", undefined, received, 90 * DAY).errors).toEqual([
      { type: "past_timestamp" },
    ]);
    expect(resolveEventTime(undefined, undefined, received, DAY)).toEqual({
      timestamp: received,
      errors: [],
    });
  });

  it("corrects a client clock that is an hour off, using sent_at", () => {
    const { timestamp, errors } = resolveEventTime(
      "2026-11-23T13:00:00Z",
      "2026-11-23T13:00:01Z",
      received,
      DAY,
    );
    expect(timestamp.toISOString()).toBe("2026-11-23T11:59:59.000Z");
    expect(errors).toEqual([{ type: "clock_drift" }]);
  });
});
