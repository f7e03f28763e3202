import { describe, expect, it } from "vitest";
import { outcomeHour } from "./ingest-batch.ts";

describe("outcomeHour", () => {
  it("truncates a time to its whole UTC hour", () => {
    expect(outcomeHour(new Date("2026-03-04T05:59:59.999Z")).toISOString()).toBe(
      "2026-03-04T05:00:00.000Z",
    );
    expect(outcomeHour(Date.parse("2026-03-04T06:00:00.000Z")).toISOString()).toBe(
      "2026-03-04T06:00:00.000Z",
    );
  });

  it("gives a Date and epoch ms the same hour", () => {
    const at = new Date("2026-11-30T23:30:00.123Z");
    expect(outcomeHour(at)).toEqual(outcomeHour(at.getTime()));
  });
});
