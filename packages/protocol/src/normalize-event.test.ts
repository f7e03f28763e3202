import { describe, expect, it } from "vitest";
import { normalizeEvent } from "./normalize-event.ts";

const meta = { eventId: "a".repeat(32), timestamp: new Date(0), receivedAt: new Date(0) };

describe("normalizeEvent", () => {
  it("accepts the list and object forms of exception, breadcrumbs and tags", () => {
    const a = normalizeEvent(
      { exception: [{ type: "E", value: "v" }], breadcrumbs: [{ message: "b" }], tags: [["k", 1]] },
      meta,
    );
    const b = normalizeEvent(
      {
        exception: { values: [{ type: "E", value: "v" }] },
        breadcrumbs: { values: [{ message: "b" }] },
        tags: { k: "1" },
      },
      meta,
    );
    for (const event of [a, b]) {
      expect(event.exceptions).toEqual([{ type: "E", value: "v", stacktrace: undefined }]);
      expect(event.breadcrumbs).toEqual([{ message: "b" }]);
      expect(event.tags).toEqual([["k", "1"]]);
      expect(event.type).toBe("error");
    }
  });

  it("reads message strings and logentry objects, and lenient levels", () => {
    expect(normalizeEvent({ message: "hi", level: "WARN" }, meta)).toMatchObject({
      logentry: { formatted: "hi" },
      level: "warning",
      type: "default",
    });
    expect(
      normalizeEvent({ logentry: { message: "x %s", params: [1] }, message: "x 1" }, meta).logentry,
    ).toEqual({ message: "x %s", params: [1], formatted: "x 1" });
    expect(normalizeEvent({ level: "nonsense" }, meta).level).toBe("error");
  });

  it("drops releases and environments Sentry would drop", () => {
    expect(normalizeEvent({ release: "latest", environment: "a/b" }, meta)).toMatchObject({
      release: null,
      environment: null,
    });
    expect(normalizeEvent({ release: " app@1.0 ", environment: "prod" }, meta)).toMatchObject({
      release: "app@1.0",
      environment: "prod",
    });
  });
});
