import { describe, expect, it } from "vitest";
import { isValidEnvironmentName, isValidReleaseVersion } from "./release-names.ts";

describe("release versions", () => {
  it("accepts what SDKs and sentry-cli send", () => {
    for (const v of ["web@1.4.0", "1.0", "abc123def456", "my app 2", "x".repeat(200)])
      expect(isValidReleaseVersion(v), v).toBe(true);
  });
  it("refuses Sentry's restricted names in any case, bad characters and length", () => {
    for (const v of [
      "",
      " ",
      ".",
      "..",
      "latest",
      "LATEST",
      "Latest",
      "a/b",
      "a\\b",
      "a\nb",
      "a\tb",
      "a\u0000b",
      "a\u0001b",
      "a\u007fb",
      "x".repeat(201),
    ])
      expect(isValidReleaseVersion(v), JSON.stringify(v)).toBe(false);
  });
});

describe("environment names", () => {
  it("accepts ordinary names and refuses Sentry's restricted ones", () => {
    expect(isValidEnvironmentName("production")).toBe(true);
    for (const v of ["", "none", "None", ".", "..", "a/b", "a\\b", "a\u0000", "x".repeat(65)])
      expect(isValidEnvironmentName(v), JSON.stringify(v)).toBe(false);
  });
});
