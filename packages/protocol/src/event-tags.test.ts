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

  it("reads browser and os from the User-Agent when the event has no such contexts", () => {
    const agent = (ua: string) =>
      Object.fromEntries(
        indexedEventTags(normalizeEvent({ request: { headers: { "User-Agent": ua } } }, meta)),
      );
    const chrome = agent(
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36",
    );
    expect(chrome).toMatchObject({
      "browser.name": "Chrome",
      browser: "Chrome 140.0",
      "os.name": "Windows",
    });
    const edge = agent(
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0",
    );
    expect(edge).toMatchObject({ "browser.name": "Edge", os: "Mac OS X 10.15" });
    const safari = agent(
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    );
    expect(safari).toMatchObject({ "browser.name": "Mobile Safari", "os.name": "iOS" });
    expect(agent("curl/8.0")["browser.name"]).toBeUndefined();
  });
});
