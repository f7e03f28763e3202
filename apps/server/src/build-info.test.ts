import { describe, expect, it } from "vitest";
import { releaseOf } from "./build-info.ts";

describe("the release a node reports", () => {
  const releases = [
    { version: "0.1.0", commit: "a".repeat(40), lastMigration: 1 },
    { version: "0.3.0", commit: "b".repeat(40), lastMigration: 9 },
  ];
  it("is the release cut from its commit, else the next minor release in development", () => {
    expect(releaseOf("a".repeat(40), releases)).toBe("0.1.0");
    expect(releaseOf("c".repeat(40), releases)).toBe("0.4.0-dev");
    expect(releaseOf(null, releases)).toBe("0.4.0-dev");
    expect(releaseOf(null, [])).toBe("0.1.0-dev");
  });
});
