import { describe, expect, it } from "vitest";
import { bundleBuildInfo, releaseOf } from "./build-info.ts";

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

  it("takes the build's SLUICE_COMMIT where no checkout says (a Docker build), never over git's", () => {
    const noGit = { release: "0.4.0-dev", commit: null };
    expect(bundleBuildInfo("B".repeat(40), noGit, releases)).toEqual({
      release: "0.3.0",
      commit: "b".repeat(40),
    });
    expect(bundleBuildInfo(` ${"c".repeat(40)}\n`, noGit, releases)).toEqual({
      release: "0.4.0-dev",
      commit: "c".repeat(40),
    });
    expect(bundleBuildInfo(undefined, noGit, releases)).toEqual(noGit);
    expect(bundleBuildInfo("", noGit, releases)).toEqual(noGit);
    const fromGit = { release: "0.1.0", commit: "a".repeat(40) };
    expect(bundleBuildInfo("b".repeat(40), fromGit, releases)).toEqual(fromGit);
    expect(() => bundleBuildInfo("abc1234", noGit, releases)).toThrow(/full commit id/);
  });
});
