import type { FleetNode } from "@sluice/db";
import { describe, expect, it } from "vitest";
import { nodeUnableToReadZstd } from "./payload-storage-guard.ts";

const own = { release: "0.7.0-dev", commit: "a".repeat(40) };
const node = (release: string, commit: string | null = "b".repeat(40)): FleetNode => ({
  id: `host:1:${release}`,
  host: "host",
  release,
  commit,
  roles: ["api"],
  schemaVersion: 14,
  registered: true,
  ready: true,
  startedAt: new Date(),
  heartbeatAt: new Date(),
});

describe("nodeUnableToReadZstd", () => {
  it("finds a node of a release before 0.6.0, a 0.6.0 dev build or an unregistered one", () => {
    for (const release of ["0.5.0", "0.6.0-dev", "0.3.0 or older", "0.2.1"]) {
      expect(nodeUnableToReadZstd([node("0.6.0"), node(release)], own)?.release).toBe(release);
    }
  });

  it("lets 0.6.0 and later through, and any node of this very commit", () => {
    expect(nodeUnableToReadZstd([node("0.6.0"), node("0.6.1"), node("0.7.0-dev")], own)).toBeNull();
    expect(nodeUnableToReadZstd([node("0.6.0-dev", own.commit)], own)).toBeNull();
    expect(nodeUnableToReadZstd([], own)).toBeNull();
    expect(nodeUnableToReadZstd([node("0.5.0", null)], { ...own, commit: null })?.release).toBe(
      "0.5.0",
    );
  });
});
