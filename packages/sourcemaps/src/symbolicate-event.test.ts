import { createHash } from "node:crypto";
import { type NormalizedEvent, normalizeEvent } from "@sluice/protocol";
import { transformSync } from "esbuild";
import { describe, expect, it } from "vitest";
import { SourceMapCache } from "./source-map-cache.ts";
import { type ArtifactLookup, type ArtifactRef, symbolicateEvent } from "./symbolicate-event.ts";

const SOURCE = [
  "export function outer(value) {",
  "  return inner(value);",
  "}",
  "function inner(value) {",
  `  const long = "${"x".repeat(200)}";`,
  '  throw new Error("bad " + value + long.length);',
  "}",
].join("\n");

/** The fixture minified by esbuild, with its map, and where its frames are. */
function minified() {
  const out = transformSync(SOURCE, {
    minify: true,
    sourcemap: "external",
    sourcefile: "src/app.js",
    format: "cjs",
  });
  const lines = out.code.split("\n");
  const line = lines.findIndex((l) => l.includes("throw"));
  const code = lines[line] ?? "";
  const at = (needle: string) => ({ lineno: line + 1, colno: code.indexOf(needle) + 1 });
  // V8 reports `throw new Error` at `new`, and the call in `outer` at the callee.
  const innerName = /function (\w+)\(\w+\)\{const/.exec(code)?.[1] ?? "?";
  return {
    code: out.code,
    map: out.map,
    throwSite: at("new Error"),
    callSite: at(`return ${innerName}(`),
    callColumnOffset: "return ".length,
  };
}

type Upload = { url: string; type: string; bytes: string | null; headers?: Record<string, string> };

/** Uploads kept in memory: the lookup contract without the database behind it. */
function lookupOf(uploads: Upload[], release = "app@1"): ArtifactLookup {
  const refs = uploads.map((u) => ({
    url: u.url,
    type: u.type,
    headers: u.headers ?? {},
    sha1: createHash("sha1")
      .update(u.bytes ?? "")
      .digest("hex"),
    key: u.url,
  }));
  return {
    sourceMapByDebugId: async () => null,
    anyUploads: async () => uploads.length > 0,
    byUrl: async (r, _dist, urls) =>
      r !== release ? null : (urls.map((u) => refs.find((a) => a.url === u)).find(Boolean) ?? null),
    read: async (artifact: ArtifactRef) => {
      const bytes = uploads.find((u) => u.url === artifact.key)?.bytes;
      return bytes === null || bytes === undefined ? null : new TextEncoder().encode(bytes);
    },
  };
}

function eventWith(frames: object[], release = "app@1"): NormalizedEvent {
  return normalizeEvent(
    {
      platform: "javascript",
      release,
      exception: { values: [{ type: "Error", value: "bad", stacktrace: { frames } }] },
    },
    { eventId: "a".repeat(32), timestamp: new Date(), receivedAt: new Date() },
  );
}

describe("symbolicateEvent", () => {
  const app = minified();
  const url = "https://cdn.example.com/static/app.min.js";
  const frames = () => [
    {
      abs_path: url,
      function: "o",
      ...app.callSite,
      colno: app.callSite.colno + app.callColumnOffset,
      in_app: true,
    },
    { abs_path: url, function: "n", ...app.throwSite, in_app: true },
  ];

  it("maps frames through the release's map: file, line, caller-named function, trimmed context", async () => {
    const event = eventWith(frames());
    const result = await symbolicateEvent(
      event,
      lookupOf([
        {
          url: "~/static/app.min.js",
          type: "minified_source",
          bytes: app.code,
          headers: { sourcemap: "app.min.js.map" },
        },
        { url: "~/static/app.min.js.map", type: "source_map", bytes: app.map },
      ]),
      new SourceMapCache(1024 * 1024),
    );
    expect(result).toEqual({ mappedFrames: 2, errors: [] });
    const [outer, inner] = event.exceptions[0]?.stacktrace?.frames ?? [];
    expect(outer).toMatchObject({ filename: "src/app.js", lineno: 2, function: "o" });
    expect(inner).toMatchObject({
      filename: "src/app.js",
      abs_path: "~/static/src/app.js",
      lineno: 6,
      function: "inner",
      context_line: '  throw new Error("bad " + value + long.length);',
      data: { sourcemap: "~/static/app.min.js.map", resolved_with: "release" },
    });
    expect(inner?.pre_context?.at(-1)).toMatch(/^ {2}const long = "x+ \{snip\}$/);
    expect(inner?.pre_context?.at(-1)?.length).toBeLessThan(160);
    expect(event.exceptions[0]?.raw_stacktrace).toEqual({ frames: frames() });
    // The payload stored is the same object: `raw` changed with the frames.
    expect(JSON.stringify(event.raw)).toContain('"filename":"src/app.js"');
  });

  it("reads an inline data: map named by the minified file", async () => {
    const inline = `${app.code}//# sourceMappingURL=data:application/json;base64,${Buffer.from(app.map).toString("base64")}\n`;
    const event = eventWith(frames());
    const result = await symbolicateEvent(
      event,
      lookupOf([{ url, type: "minified_source", bytes: inline }]),
      new SourceMapCache(1024 * 1024),
    );
    expect(result.mappedFrames).toBe(2);
    expect(event.exceptions[0]?.stacktrace?.frames[1]).toMatchObject({ lineno: 6 });
  });

  it.each([
    [
      "a map whose blob is gone",
      [
        { url, type: "minified_source", bytes: app.code, headers: { sourcemap: "app.min.js.map" } },
        { url: `${url}.map`, type: "source_map", bytes: null },
      ],
      { type: "js_no_source", url: `${url}.map`, reason: expect.stringContaining("sluice verify") },
    ],
    [
      "a map that is not JSON",
      [
        { url, type: "minified_source", bytes: app.code, headers: { sourcemap: "app.min.js.map" } },
        { url: `${url}.map`, type: "source_map", bytes: "{oops" },
      ],
      { type: "js_invalid_sourcemap", url: `${url}.map` },
    ],
    [
      "a minified file that names no map",
      [{ url, type: "minified_source", bytes: "x();" }],
      { type: "js_no_source", url, reason: `the uploaded file ${url} names no source map` },
    ],
  ])("leaves the frames as sent and says why for %s", async (_, uploads, error) => {
    const event = eventWith(frames());
    const result = await symbolicateEvent(event, lookupOf(uploads), new SourceMapCache(1024));
    expect(result).toEqual({ mappedFrames: 0, errors: [expect.objectContaining(error)] });
    expect(event.exceptions[0]?.stacktrace?.frames).toEqual(frames());
    expect(event.exceptions[0]?.raw_stacktrace).toBeUndefined();
  });

  it("reports a position the map does not cover", async () => {
    const event = eventWith([{ abs_path: url, lineno: 40, colno: 1, in_app: true }]);
    const result = await symbolicateEvent(
      event,
      lookupOf([
        { url: `${url}.map`, type: "source_map", bytes: app.map },
        { url, type: "minified_source", bytes: app.code, headers: { sourcemap: `${url}.map` } },
      ]),
      new SourceMapCache(1024 * 1024),
    );
    expect(result.errors).toEqual([
      expect.objectContaining({ type: "js_invalid_sourcemap_location", url: `${url}.map` }),
    ]);
  });

  it("says nothing when nothing was ever uploaded, and skips Node built-ins", async () => {
    const event = eventWith([
      { abs_path: url, lineno: 1, colno: 5, in_app: true },
      { filename: "node:internal/modules/cjs/loader", lineno: 1, colno: 1, platform: "node" },
    ]);
    const result = await symbolicateEvent(event, lookupOf([]), new SourceMapCache(1024));
    expect(result).toEqual({ mappedFrames: 0, errors: [] });
  });
});
