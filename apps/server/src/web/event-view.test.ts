import { normalizeEvent } from "@sluice/protocol";
import { describe, expect, it } from "vitest";
import { EventView } from "./event-view.tsx";

const meta = { eventId: "a".repeat(32), timestamp: new Date(), receivedAt: new Date() };
const html = (raw: Record<string, unknown>) =>
  String(EventView({ event: normalizeEvent(raw, meta) }));

describe("EventView", () => {
  it("shows a chain most recent first, and each frame's minified location from raw_stacktrace", () => {
    const out = html({
      exception: {
        values: [
          { type: "CauseError", value: "inner" },
          {
            type: "OuterError",
            value: "outer",
            stacktrace: {
              frames: [{ function: "run", filename: "src/a.js", lineno: 3, in_app: true }],
            },
            raw_stacktrace: {
              frames: [{ function: "r", abs_path: "https://x/app.min.js", lineno: 1, colno: 99 }],
            },
          },
        ],
      },
    });
    expect(out.indexOf(">OuterError</h3>")).toBeLessThan(out.indexOf(">CauseError</h3>"));
    expect(out).toContain("Exceptions (most recent first)");
    expect(out).toContain("r in https://x/app.min.js:1:99");
  });

  it("shows the crashed thread's trace when there is no exception", () => {
    const out = html({
      message: "hang",
      threads: {
        values: [
          { id: 1, stacktrace: { frames: [{ function: "idle", filename: "a.c" }] } },
          {
            id: 2,
            name: "main",
            crashed: true,
            stacktrace: { frames: [{ function: "spin", filename: "b.c", in_app: true }] },
          },
        ],
      },
    });
    expect(out).toContain("Thread main");
    expect(out).toContain('<span class="fn">spin</span>');
    expect(out).not.toContain('<span class="fn">idle</span>');
  });

  it("escapes what the event says", () => {
    expect(html({ message: "<script>alert(1)</script>" })).not.toContain("<script>alert");
  });
});
