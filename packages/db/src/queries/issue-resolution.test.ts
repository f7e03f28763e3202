import { describe, expect, it } from "vitest";
import { compareSemver, resolutionHolds } from "./issue-resolution.ts";

const day = (n: number) => new Date(Date.UTC(2026, 0, n));

describe("compareSemver", () => {
  it("orders versions of one package and gives up on others", () => {
    expect(compareSemver("app@1.2.0", "app@1.10.0")).toBe(-1);
    expect(compareSemver("2.0", "1.9.9")).toBe(1);
    expect(compareSemver("1.0.0+build", "1.0.0")).toBe(0);
    expect(compareSemver("app@1.0", "other@2.0")).toBeNull();
    expect(compareSemver("abc123", "1.0")).toBeNull();
  });
});

describe("resolutionHolds", () => {
  const next = { type: "in_next_release" as const, release: "1.0", releaseAt: day(2) };
  const inRelease = { type: "in_release" as const, release: "2.0", releaseAt: day(5) };

  it("keeps an in-next-release resolution for events of the same or an older release", () => {
    expect(resolutionHolds(next, { version: "1.0", at: day(2) })).toBe(true);
    expect(resolutionHolds(next, { version: "0.9", at: day(1) })).toBe(true);
    expect(resolutionHolds(next, null)).toBe(true);
  });

  it("reopens an in-next-release resolution for a newer release", () => {
    expect(resolutionHolds(next, { version: "1.1", at: day(3) })).toBe(false);
    // semver decides over dates: 0.9 first seen later is still older
    expect(resolutionHolds(next, { version: "0.9", at: day(9) })).toBe(true);
    // no semver, unknown date: counted as newer
    const named = { ...next, release: "abc" };
    expect(resolutionHolds(named, { version: "def", at: null })).toBe(false);
    expect(resolutionHolds(named, { version: "def", at: day(1) })).toBe(true);
  });

  it("reopens an in-release resolution for that release and newer ones", () => {
    expect(resolutionHolds(inRelease, { version: "2.0", at: day(5) })).toBe(false);
    expect(resolutionHolds(inRelease, { version: "2.1", at: day(6) })).toBe(false);
    expect(resolutionHolds(inRelease, { version: "1.5", at: day(4) })).toBe(true);
  });
});
