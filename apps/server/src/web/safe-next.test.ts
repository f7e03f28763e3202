import { describe, expect, it } from "vitest";
import { safeNext } from "./safe-next.ts";

describe("safeNext", () => {
  it("keeps paths of this site", () => {
    expect(safeNext("/organizations/sluice/issues/?query=is%3Aresolved")).toBe(
      "/organizations/sluice/issues/?query=is%3Aresolved",
    );
  });
  it("refuses other hosts, URLs, control characters and overlong paths", () => {
    for (const next of [
      "//evil.example/",
      "/\\evil.example",
      "https://evil.example/",
      "evil",
      "/a\nb",
      `/${"a".repeat(2001)}`,
      "",
      null,
      undefined,
    ])
      expect(safeNext(next)).toBeNull();
  });
});
