import { describe, expect, it } from "vitest";
import { indexedEventTags, MAX_EVENT_TAGS } from "./event-tags.ts";
import { normalizeEvent } from "./normalize-event.ts";

const meta = { eventId: "a".repeat(32), timestamp: new Date(0), receivedAt: new Date(0) };

describe("indexedEventTags", () => {
  it("derives Sentry's tags from the event and its contexts, own tags first", () => {
    const event = normalizeEvent(
      {
        level: "warning",
        environment: "production",
        release: "app@1.0",
        server_name: "web-1",
        tags: { level: "custom", feature: "checkout" },
        user: { email: "a@b.c" },
        request: { url: "https://x.test/cart?id=1" },
        contexts: {
          browser: { name: "Chrome", version: "120" },
          os: { name: "Linux" },
          device: { family: "Desktop" },
        },
      },
      meta,
    );
    expect(Object.fromEntries(indexedEventTags(event))).toEqual({
      level: "custom",
      feature: "checkout",
      environment: "production",
      release: "app@1.0",
      server_name: "web-1",
      user: "email:a@b.c",
      url: "https://x.test/cart",
      browser: "Chrome 120",
      "browser.name": "Chrome",
      os: "Linux",
      "os.name": "Linux",
      "device.family": "Desktop",
    });
  });

  it("bounds the event's own tags and value lengths", () => {
    const tags = Object.fromEntries(
      Array.from({ length: 80 }, (_, i) => [`k${i}`, "v".repeat(300)]),
    );
    const pairs = indexedEventTags(normalizeEvent({ tags }, meta));
    expect(pairs.filter(([k]) => k.startsWith("k"))).toHaveLength(MAX_EVENT_TAGS);
    expect(Math.max(...pairs.map(([, v]) => v.length))).toBe(200);
  });

  it("leaves out what Postgres cannot store and never splits a surrogate pair", () => {
    const pairs = indexedEventTags(
      normalizeEvent(
        {
          tags: {
            nul: "a\u0000b",
            lone: "x\uDC00y",
            "k\u0000": "v",
            emoji: `${"e".repeat(199)}😀`,
          },
        },
        meta,
      ),
    );
    const tags = Object.fromEntries(pairs);
    expect(tags.nul).toBeUndefined();
    expect(tags.lone).toBeUndefined();
    expect(tags["k\u0000"]).toBeUndefined();
    expect(tags.emoji).toBe("e".repeat(199));
  });
});
