import { strToU8, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { readSourceBundle } from "./source-bundle.ts";

const limits = { maxFiles: 10, maxUnpackedBytes: 1024 * 1024 };

function sourceBundle(files: Record<string, Uint8Array>, header = true): Uint8Array {
  const zip = zipSync(files);
  if (!header) return zip;
  const out = new Uint8Array(8 + zip.length);
  out.set(strToU8("SYSB"));
  new DataView(out.buffer).setUint32(4, 2, true);
  out.set(zip, 8);
  return out;
}

const manifest = (files: object, extra: object = {}) =>
  strToU8(JSON.stringify({ files, ...extra }));

describe("readSourceBundle", () => {
  it("reads files, types, lowercased headers and debug ids from the manifest", () => {
    const bytes = sourceBundle({
      "manifest.json": manifest(
        {
          "files/_/_/app.js": {
            type: "minified_source",
            url: "~/app.js",
            headers: { "Debug-Id": "C941A0B2E8E84E0BA8B2F3A1B2C3D4E5", Sourcemap: "app.js.map" },
          },
        },
        { release: "web@1", dist: "7", debug_id: "11111111-2222-3333-4444-555555555555" },
      ),
      "files/_/_/app.js": strToU8("minified();"),
    });
    const result = readSourceBundle(bytes, limits);
    expect(result).toEqual({
      ok: true,
      bundle: {
        bundleId: "11111111-2222-3333-4444-555555555555",
        release: "web@1",
        dist: "7",
        files: [
          {
            url: "~/app.js",
            type: "minified_source",
            headers: { "debug-id": "C941A0B2E8E84E0BA8B2F3A1B2C3D4E5", sourcemap: "app.js.map" },
            debugId: "c941a0b2-e8e8-4e0b-a8b2-f3a1b2c3d4e5",
            bytes: strToU8("minified();"),
          },
        ],
      },
    });
  });

  it("reads a ZIP without the SYSB header", () => {
    const bytes = sourceBundle(
      {
        "manifest.json": manifest({ "a.js": { url: "~/a.js" } }),
        "files/a.js": strToU8("a"),
      },
      false,
    );
    expect(readSourceBundle(bytes, limits)).toMatchObject({
      ok: true,
      bundle: { files: [{ url: "~/a.js", type: "source" }] },
    });
  });

  it.each([
    ["not a ZIP", strToU8("SYSB\u0002\u0000\u0000\u0000garbage"), /not a valid ZIP archive/],
    ["no manifest", sourceBundle({ "files/a.js": strToU8("a") }), /no manifest.json/],
    ["a manifest that is not JSON", sourceBundle({ "manifest.json": strToU8("{") }), /not JSON/],
    [
      "a manifest naming a missing file",
      sourceBundle({ "manifest.json": manifest({ "files/_/_/gone.js": { url: "~/gone.js" } }) }),
      /names files\/_\/_\/gone.js, which is missing/,
    ],
    [
      "more files than allowed",
      sourceBundle(
        Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}`, strToU8("x")])),
      ),
      /more than 10 files/,
    ],
    [
      "more unpacked bytes than allowed (a ZIP bomb)",
      sourceBundle({ "manifest.json": manifest({}), big: new Uint8Array(2 * 1024 * 1024) }),
      /unpacked bytes/,
    ],
  ])("rejects %s with the reason", (_, bytes, reason) => {
    const result = readSourceBundle(bytes, limits);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(reason);
  });
});
