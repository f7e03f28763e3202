import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { createApiToken } from "@sluice/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiToken, newApiToken } from "../src/accounts/auth-tokens.ts";
import { api, countRows, startTestSluice, type TestSluice } from "./harness.ts";

const sha1 = (bytes: Uint8Array | string) => createHash("sha1").update(bytes).digest("hex");

describe("the upload protocol refuses bad input and keeps nothing of it", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ roles: "api" });
  });
  afterAll(async () => t?.stop());

  const postChunks = (
    parts: { field: string; name: string; bytes: Uint8Array }[],
    token = t.token,
  ) => {
    const form = new FormData();
    for (const part of parts) form.append(part.field, new Blob([part.bytes]), part.name);
    return fetch(`${t.url}/api/0/organizations/sluice/chunk-upload/`, {
      method: "POST",
      body: form,
      headers: { Authorization: `Bearer ${token}` },
    });
  };
  const assemble = (body: object) =>
    api(t, "/api/0/organizations/sluice/artifactbundle/assemble/", {
      method: "POST",
      body: JSON.stringify(body),
    });

  it("tells sentry-cli where and how to upload", async () => {
    const response = await api(t, "/api/0/organizations/sluice/chunk-upload/");
    const options = (await response.json()) as { chunkSize: number; accept: string[] };
    expect(options).toMatchObject({
      url: `${t.url}/api/0/organizations/sluice/chunk-upload/`,
      hashAlgorithm: "sha1",
      compression: ["gzip"],
    });
    expect(Math.log2(options.chunkSize) % 1).toBe(0);
    expect(options.accept).toContain("artifact_bundles_v2");
  });

  it("stores a gzipped chunk under the SHA-1 of its uncompressed bytes", async () => {
    const bytes = new TextEncoder().encode("chunk one");
    const response = await postChunks([
      { field: "file_gzip", name: sha1(bytes), bytes: gzipSync(bytes) },
    ]);
    expect(response.status).toBe(200);
    expect(await countRows(t.sql, "upload_chunks", `sha1 = '${sha1(bytes)}' AND size = 9`)).toBe(1);
  });

  it.each([
    [
      "a chunk whose name is not its SHA-1",
      [{ field: "file", name: "0".repeat(40), bytes: new Uint8Array([1]) }],
      /has SHA-1/,
    ],
    [
      "a file_gzip part that is not gzip",
      [{ field: "file_gzip", name: "1".repeat(40), bytes: new Uint8Array([1, 2]) }],
      /not gzip/,
    ],
    [
      "more chunks than chunksPerRequest",
      Array.from({ length: 65 }, (_, i) => {
        const bytes = new TextEncoder().encode(`c${i}`);
        return { field: "file", name: sha1(bytes), bytes };
      }),
      /Too many chunks/,
    ],
  ])("answers 400 to %s", async (_, parts, error) => {
    const before = await countRows(t.sql, "upload_chunks");
    const response = await postChunks(parts);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(error);
    expect(await countRows(t.sql, "upload_chunks")).toBe(before);
  });

  it("lists the chunks it lacks, then records a bundle that is not a bundle as an error", async () => {
    const bytes = new TextEncoder().encode("not a zip archive at all");
    const request = { checksum: sha1(bytes), chunks: [sha1(bytes)], projects: ["default"] };
    expect(await (await assemble(request)).json()).toEqual({
      state: "not_found",
      missingChunks: [sha1(bytes)],
      detail: null,
    });
    await postChunks([{ field: "file", name: sha1(bytes), bytes }]);
    const answer = await (await assemble(request)).json();
    expect(answer).toMatchObject({
      state: "error",
      detail: expect.stringMatching(/not a valid ZIP/),
    });
    expect(await countRows(t.sql, "artifacts")).toBe(0);
    // Polling with no chunks answers the recorded state.
    expect(await (await assemble({ ...request, chunks: [] })).json()).toMatchObject({
      state: "error",
    });
  });

  it("records an error when the chunks do not add up to the checksum", async () => {
    const bytes = new TextEncoder().encode("chunk one");
    const answer = await (
      await assemble({ checksum: "f".repeat(40), chunks: [sha1(bytes)], projects: ["default"] })
    ).json();
    expect(answer).toMatchObject({
      state: "error",
      detail: expect.stringMatching(/not the checksum/),
    });
  });

  it.each([
    ["an unknown project", { checksum: "a".repeat(40), chunks: [], projects: ["nope"] }, 400],
    ["no projects", { checksum: "a".repeat(40), chunks: [], projects: [] }, 400],
    ["a checksum that is not SHA-1", { checksum: "xyz", chunks: [], projects: ["default"] }, 400],
    [
      "a release with a slash",
      { checksum: "a".repeat(40), chunks: [], projects: ["default"], version: "a/b" },
      400,
    ],
  ])("answers assemble with %s by 400", async (_, body, status) => {
    expect((await assemble(body)).status).toBe(status);
  });

  it("refuses invalid releases with Sentry's detail, and unknown projects", async () => {
    const create = (body: object) =>
      api(t, "/api/0/organizations/sluice/releases/", {
        method: "POST",
        body: JSON.stringify(body),
      });
    const slash = await create({ version: "a/b", projects: ["default"] });
    expect(slash.status).toBe(400);
    expect(((await slash.json()) as { detail: string }).detail).toMatch(/invalid release version/);
    expect((await create({ version: "latest", projects: ["default"] })).status).toBe(400);
    expect((await create({ version: "ok@1", projects: ["nope"] })).status).toBe(400);
    expect(await countRows(t.sql, "releases")).toBe(0);
    const created = await create({ version: "ok@1", projects: ["default"] });
    expect(created.status).toBe(201);
    expect((await create({ version: "ok@1", projects: ["default"] })).status).toBe(208);
  });

  it("answers a second release file of the same name 409", async () => {
    const upload = () => {
      const form = new FormData();
      form.set("file", new Blob(["x();"]), "app.js");
      form.set("name", "~/app.js");
      form.append("header", "Sourcemap:app.js.map");
      return fetch(`${t.url}/api/0/organizations/sluice/releases/ok@1/files/`, {
        method: "POST",
        body: form,
        headers: { Authorization: `Bearer ${t.token}` },
      });
    };
    const first = await upload();
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({
      name: "~/app.js",
      headers: { Sourcemap: "app.js.map" },
    });
    expect((await upload()).status).toBe(409);
    const listed = (await (
      await api(t, "/api/0/organizations/sluice/releases/ok@1/files/")
    ).json()) as { id: string }[];
    expect(listed).toHaveLength(1);
    const download = await api(
      t,
      `/api/0/organizations/sluice/releases/ok@1/files/${listed[0]?.id}/?download=1`,
    );
    expect(await download.text()).toBe("x();");
  });

  it("needs a token with project:releases", async () => {
    const readOnly = newApiToken();
    await createApiToken(t.services.db.orm, hashApiToken(readOnly), ["project:read"], "read only");
    const bytes = new TextEncoder().encode("chunk two");
    expect((await postChunks([{ field: "file", name: sha1(bytes), bytes }], readOnly)).status).toBe(
      403,
    );
    expect(
      (await postChunks([{ field: "file", name: sha1(bytes), bytes }], "sntryu_wrong")).status,
    ).toBe(401);
  });
});
