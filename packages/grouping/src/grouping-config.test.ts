import { normalizeEvent } from "@sluice/protocol";
import { describe, expect, it } from "vitest";
import {
  CURRENT_GROUPING_CONFIG,
  computeEventGrouping,
  isGroupingConfig,
  PREVIOUS_GROUPING_CONFIG,
} from "./grouping-config.ts";
import { hashEvent } from "./hash-event.ts";
import { hashEventLegacy } from "./legacy/hash-event-legacy.ts";

const meta = { eventId: "a".repeat(32), timestamp: new Date(0), receivedAt: new Date(0) };
const event = (raw: Record<string, unknown>) => normalizeEvent(raw, meta);
const csp = (message: string) => ({
  logentry: { formatted: message },
  csp: { effective_directive: "img-src", blocked_uri: "https://cdn.test/x.png" },
});

describe("computeEventGrouping", () => {
  it("gives the current config's hashes first and the previous config's as secondary", () => {
    expect(CURRENT_GROUPING_CONFIG).toBe("sluice:2026-12");
    expect(PREVIOUS_GROUPING_CONFIG).toBe("legacy");
    expect(isGroupingConfig("legacy")).toBe(true);
    expect(isGroupingConfig("newstyle:2023-01-11")).toBe(false);
    const e = event(csp("Blocked 'image' from 'cdn.test'"));
    const grouping = computeEventGrouping(e);
    expect(grouping.config).toBe("sluice:2026-12");
    expect(grouping.hashes).toEqual(hashEvent(e));
    expect(grouping.secondaryConfig).toBe("legacy");
    expect(grouping.secondaryHashes).toEqual(hashEventLegacy(e));
    expect(grouping.secondaryHashes.map((h) => h.hash)).not.toContain(grouping.hashes[0]?.hash);
  });

  it("lets an event whose hash changed still find its old issue by a secondary hash", () => {
    const before = hashEventLegacy(event(csp("Blocked 'image' from 'cdn.test'")));
    const now = computeEventGrouping(event(csp("Blocked 'image' from 'cdn.test'")));
    expect(now.hashes.map((h) => h.hash)).not.toContain(before[0]?.hash);
    expect(now.secondaryHashes.map((h) => h.hash)).toContain(before[0]?.hash);
  });

  it("gives no secondary hashes where the old grouping over-merged", () => {
    const ruby = (message: string) => event({ platform: "ruby", message, fingerprint: [] });
    expect(computeEventGrouping(ruby("a")).secondaryHashes).toEqual([]);
    const js = (fn: string) =>
      event({
        platform: "javascript",
        exception: {
          values: [
            {
              type: "Error",
              value: "bad",
              stacktrace: { frames: [{ function: fn, filename: "x.js", in_app: false }] },
            },
          ],
        },
      });
    const secondary = (fn: string) =>
      computeEventGrouping(js(fn)).secondaryHashes.map((h) => h.hash);
    expect(secondary("a").some((h) => secondary("b").includes(h))).toBe(false);
  });

  it("can group under one config alone", () => {
    const e = event(csp("m"));
    const legacyOnly = computeEventGrouping(e, { config: "legacy", secondaryConfig: null });
    expect(legacyOnly.hashes).toEqual(hashEventLegacy(e));
    expect(legacyOnly.secondaryConfig).toBeNull();
    expect(legacyOnly.secondaryHashes).toEqual([]);
  });
});
