import { describe, expect, it } from "vitest";
import {
  candidateUrls,
  decodeDataUrl,
  findSourceMappingUrl,
  resolveSourceMapUrl,
} from "./artifact-urls.ts";
import { normalizeDebugId } from "./debug-id.ts";

describe("artifact URLs", () => {
  it("tries the URL, without query, and as ~/path", () => {
    expect(candidateUrls("https://cdn.example.com/static/app.js?v=3#x")).toEqual([
      "https://cdn.example.com/static/app.js?v=3#x",
      "https://cdn.example.com/static/app.js",
      "~/static/app.js",
    ]);
    expect(candidateUrls("/srv/app/dist/main.js")).toEqual([
      "/srv/app/dist/main.js",
      "~/srv/app/dist/main.js",
    ]);
    expect(candidateUrls("app:///main.js")).toEqual(["app:///main.js", "~/main.js"]);
  });

  it("resolves a map reference against the minified file's URL, keeping ~/", () => {
    expect(resolveSourceMapUrl("~/static/app.js", "app.js.map")).toBe("~/static/app.js.map");
    expect(resolveSourceMapUrl("~/static/app.js", "../maps/app.js.map")).toBe("~/maps/app.js.map");
    expect(resolveSourceMapUrl("https://x.io/a/b.js", "b.js.map")).toBe("https://x.io/a/b.js.map");
    expect(resolveSourceMapUrl("/srv/dist/b.js", "b.js.map")).toBe("/srv/dist/b.js.map");
    expect(resolveSourceMapUrl("~/a.js", "data:application/json;base64,e30=")).toBeNull();
  });

  it("finds the last sourceMappingURL and decodes data: URLs", () => {
    expect(
      findSourceMappingUrl("x();\n//# sourceMappingURL=a.map\n//# sourceMappingURL=b.map\n"),
    ).toBe("b.map");
    expect(findSourceMappingUrl("x();")).toBeNull();
    expect(
      new TextDecoder().decode(decodeDataUrl("data:application/json;base64,e30=") ?? undefined),
    ).toBe("{}");
    expect(
      new TextDecoder().decode(decodeDataUrl("data:application/json,%7B%7D") ?? undefined),
    ).toBe("{}");
  });

  it("normalizes debug ids to the dashed lowercase form", () => {
    expect(normalizeDebugId("C941A0B2E8E84E0BA8B2F3A1B2C3D4E5")).toBe(
      "c941a0b2-e8e8-4e0b-a8b2-f3a1b2c3d4e5",
    );
    expect(normalizeDebugId("c941a0b2-e8e8-4e0b-a8b2-f3a1b2c3d4e5")).toBe(
      "c941a0b2-e8e8-4e0b-a8b2-f3a1b2c3d4e5",
    );
    expect(normalizeDebugId("c941a0b2-e8e8-4e0b-a8b2-f3a1b2c3d4e5-0")).toBeNull();
    expect(normalizeDebugId(42)).toBeNull();
  });
});
