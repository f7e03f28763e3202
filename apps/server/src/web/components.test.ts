import { describe, expect, it } from "vitest";
import { exactTime, relativeTime } from "./components.tsx";

describe("times", () => {
  const now = new Date("2026-12-01T12:00:00Z");
  it("reads relative times in whole units, past and future", () => {
    expect(relativeTime(new Date("2026-12-01T11:59:30Z"), now)).toBe("just now");
    expect(relativeTime(new Date("2026-12-01T11:59:00Z"), now)).toBe("1 minute ago");
    expect(relativeTime(new Date("2026-12-01T09:00:00Z"), now)).toBe("3 hours ago");
    expect(relativeTime(new Date("2026-11-29T12:00:00Z"), now)).toBe("2 days ago");
    expect(relativeTime(new Date("2025-11-01T12:00:00Z"), now)).toBe("1 year ago");
    expect(relativeTime(new Date("2026-12-01T14:00:00Z"), now)).toBe("in 2 hours");
  });
  it("shows the exact time in UTC", () => {
    expect(exactTime(new Date("2026-12-01T12:34:56.789Z"))).toBe("2026-12-01 12:34:56 UTC");
  });
});
