import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { strToU8, zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProjectWithKey } from "../src/commands/default-project.ts";
import { api, countRows, startTestSluice, type TestSluice } from "./harness.ts";

const sha1 = (bytes: Uint8Array | string) => createHash("sha1").update(bytes).digest("hex");

/** Every file under the blob store's directory (empty when it does not exist yet). */
function listBlobs(t: TestSluice): string[] {
  try {
    return readdirSync(join(t.config.dataDir, "blobs"), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** Sends `head` on a raw socket and resolves the first bytes of the answer (the body is never sent). */
function rawRequest(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no answer within 5 s"));
    }, 5_000);
    socket.once("data", (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data.toString("latin1"));
    });
    socket.once("error", reject);
  });
}

async function expectDetail(response: Response, status: number, what: string) {
  expect(response.status, what).toBe(status);
  const body = (await response.json()) as { detail?: unknown };
  expect(typeof body.detail, what).toBe("string");
  return body.detail as string;
}

describe("the management API refuses bad input at the edge", () => {
  let t: TestSluice;
  let issueId: string;
  const json = (method: string, path: string, body: unknown) =>
    api(t, path, { method, body: typeof body === "string" ? body : JSON.stringify(body) });
  const uploadFile = (
    path: string,
    parts: { name?: string; dist?: string; headers?: string[]; bytes?: string; filename?: string },
  ) => {
    const form = new FormData();
    form.set("file", new Blob([parts.bytes ?? "x();"]), parts.filename ?? "app.js");
    if (parts.name !== undefined) form.set("name", parts.name);
    if (parts.dist !== undefined) form.set("dist", parts.dist);
    for (const header of parts.headers ?? []) form.append("header", header);
    return fetch(`${t.url}${path}`, {
      method: "POST",
      body: form,
      headers: { Authorization: `Bearer ${t.token}` },
    });
  };

  beforeAll(async () => {
    t = await startTestSluice({ roles: "api", redis: false });
    await createProjectWithKey(t.services, "sluice", "other");
    const issue = await t.sql.query(
      `INSERT INTO issues (project_id, short_id, title, first_seen, last_seen)
       VALUES ($1, 1, 'Boom', now(), now()) RETURNING id::text`,
      [t.projectId],
    );
    issueId = issue.rows[0].id;
    for (const [version, projects] of [
      ["web@1", ["default"]],
      ["files@1", ["default"]],
      ["shared@1", ["default", "other"]],
    ] as const) {
      const created = await json("POST", "/api/0/organizations/sluice/releases/", {
        version,
        projects,
      });
      expect(created.status).toBe(201);
    }
  });
  afterAll(async () => t?.stop());

  describe("release file names that are not Latin-1 download (RFC 6266)", () => {
    it.each([
      ["~/dist/файл\u0001.js", "файл\u0001.js"],
      ["~/dist/日本.js", "日本.js"],
      ['~/dist/we"ird\\name.js', 'we"ird\\name.js'],
    ])("serves %j with an encoded Content-Disposition", async (name, filename) => {
      const uploaded = await uploadFile("/api/0/organizations/sluice/releases/files@1/files/", {
        name,
        bytes: `// ${name}`,
      });
      expect(uploaded.status).toBe(201);
      const { id } = (await uploaded.json()) as { id: string };
      const download = await api(
        t,
        `/api/0/organizations/sluice/releases/files@1/files/${id}/?download=1`,
      );
      expect(download.status).toBe(200);
      expect(await download.text()).toBe(`// ${name}`);
      const disposition = download.headers.get("content-disposition") ?? "";
      expect(disposition).toMatch(/^attachment; /);
      const star = /filename\*=UTF-8''([^;]+)/.exec(disposition);
      const plain = /filename="((?:[^"\\]|\\.)*)"/.exec(disposition);
      const shown = star
        ? decodeURIComponent(star[1] as string)
        : (plain?.[1] ?? "").replace(/\\(.)/g, "$1");
      expect(shown).toBe(filename);
    });
  });

  describe("bad API input answers 400 with a detail, never 500", () => {
    it("refuses NUL in a search query", async () => {
      await expectDetail(
        await api(t, "/api/0/projects/sluice/default/issues/?query=a%00b"),
        400,
        "query",
      );
      const ok = await api(t, "/api/0/projects/sluice/default/issues/?query=is:resolved%20x");
      expect(ok.status).toBe(200);
    });

    it.each([
      ["NUL in a version", { version: "web\u0000@2", projects: ["default"] }],
      ["a control character in a version", { version: "web\u0001@2", projects: ["default"] }],
      [
        "NUL in a commit",
        { version: "web@2", projects: ["default"], commits: [{ id: "a\u0000" }] },
      ],
      [
        "NUL in a commit's key",
        { version: "web@2", projects: ["default"], commits: [{ "i\u0000d": "a" }] },
      ],
      [
        "a lone surrogate in a ref",
        { version: "web@2", projects: ["default"], refs: [{ commit: "\ud800" }] },
      ],
      ["NUL in a project name", { version: "web@2", projects: ["def\u0000ault"] }],
      ["too many projects", { version: "web@2", projects: Array(2000).fill("default") }],
      ["a body that is not JSON", "{version:"],
      ["a body that is not an object", "[]"],
    ])("refuses a new release with %s", async (_, body) => {
      const response = await json("POST", "/api/0/organizations/sluice/releases/", body);
      await expectDetail(response, 400, JSON.stringify(body).slice(0, 60));
      expect(await countRows(t.sql, "releases", "version LIKE 'web@2%'")).toBe(0);
    });

    it("refuses NUL in the commits of a release update", async () => {
      const response = await json("PUT", "/api/0/organizations/sluice/releases/web@1/", {
        commits: [{ id: "abc", message: "fix\u0000" }],
      });
      await expectDetail(response, 400, "commits");
      expect(
        (await t.sql.query("SELECT commits FROM releases WHERE version = 'web@1'")).rows[0].commits,
      ).toEqual([]);
    });

    it.each([
      ["NUL in the environment", { environment: "prod\u0000" }],
      ["a slash in the environment", { environment: "prod/eu" }],
      ["NUL in the name", { environment: "prod", name: "a\u0000" }],
    ])("refuses a deploy with %s", async (_, body) => {
      const response = await json(
        "POST",
        "/api/0/organizations/sluice/releases/web@1/deploys/",
        body,
      );
      await expectDetail(response, 400, "deploy");
      expect(await countRows(t.sql, "deploys")).toBe(0);
    });

    it.each([
      ["NUL in the name", { name: "~/a\u0000.js" }],
      ["NUL in the file name", { filename: "a\u0000.js" }],
      ["NUL in the dist", { name: "~/a.js", dist: "d\u0000" }],
      ["a dist longer than 64", { name: "~/a.js", dist: "d".repeat(65) }],
      ["NUL in a header", { name: "~/a.js", headers: ["Sourcemap:a\u0000.map"] }],
      ["a name too long for the database's index", { name: `~/${"日".repeat(1000)}.js` }],
      ["a header that is not Key:Value", { name: "~/a.js", headers: ["Sourcemap"] }],
      [
        "too many headers",
        { name: "~/a.js", headers: Array.from({ length: 100 }, (_, i) => `X-${i}:v`) },
      ],
    ])("refuses a release file with %s and stores nothing", async (_, parts) => {
      const blobs = listBlobs(t);
      const files = await countRows(t.sql, "artifacts");
      const response = await uploadFile("/api/0/organizations/sluice/releases/web@1/files/", {
        ...parts,
        bytes: `refused ${JSON.stringify(parts)}`,
      });
      await expectDetail(response, 400, JSON.stringify(parts));
      expect(await countRows(t.sql, "artifacts")).toBe(files);
      expect(listBlobs(t)).toEqual(blobs);
    });

    it.each([
      ["an offset beyond bigint", "cursor=0:99999999999999999999:0"],
      ["a negative offset", "cursor=0:-1:0"],
      ["a cursor that is not a cursor", "cursor=abc"],
      ["a cursor with NUL", "cursor=0:1%00:0"],
      ["per_page 0", "per_page=0"],
      ["per_page above 100", "per_page=101"],
      ["per_page that is not a number", "per_page=ten"],
      ["per_page beyond bigint", "per_page=99999999999999999999"],
    ])("refuses a page with %s", async (_, query) => {
      for (const path of [
        "/api/0/projects/sluice/default/issues/",
        "/api/0/organizations/sluice/releases/",
        "/api/0/organizations/",
      ]) {
        await expectDetail(await api(t, `${path}?${query}`), 400, `${path}?${query}`);
      }
    });

    it("still pages with Sentry's cursors", async () => {
      const page = await api(t, "/api/0/organizations/sluice/releases/?per_page=1&cursor=0:1:0");
      expect(page.status).toBe(200);
      expect((await page.json()) as unknown[]).toHaveLength(1);
      expect(page.headers.get("link")).toMatch(/cursor="0:2:0"/);
    });

    it.each(
      [
        "/api/0/issues/99999999999999999999/",
        "/api/0/issues/abc/",
        "/api/0/issues/-1/",
        "/api/0/issues/1e3/",
        "/api/0/issues/99999999999999999999/events/",
        "/api/0/organizations/sluice/issues/abc/events/latest/",
        "/api/0/organizations/slu%00ice/",
        "/api/0/organizations/slu%00ice/projects/",
        "/api/0/projects/sluice/def%00ault/",
        "/api/0/projects/sluice/def%00ault/issues/",
        `/api/0/projects/sluice/default/events/${"a".repeat(31)}%00/`,
        "/api/0/organizations/sluice/releases/web%00@1/",
        `/api/0/organizations/sluice/releases/${"v".repeat(5000)}/`,
        "/api/0/organizations/sluice/releases/web%00@1/files/",
        "/api/0/organizations/sluice/releases/web@1/files/abc/",
        "/api/0/organizations/sluice/releases/web@1/files/99999999999999999999/",
        `/api/0/organizations/${"o".repeat(5000)}/`,
      ].map((path) => [path.length > 90 ? `${path.slice(0, 80)}…` : path, path]),
    )("answers a bad path parameter with 404 or 400: %s", async (_, path) => {
      const response = await api(t, path);
      expect([400, 404], `${path}: ${response.status}`).toContain(response.status);
      expect(await response.json()).toBeTypeOf("object");
    });
  });

  describe("project-scoped release routes honour the project", () => {
    it("does not read, change or delete a release of another project", async () => {
      const base = "/api/0/projects/sluice/other/releases/web@1";
      await expectDetail(await api(t, `${base}/`), 404, "GET");
      await expectDetail(
        await json("PUT", `${base}/`, { dateReleased: "2026-01-01T00:00:00Z" }),
        404,
        "PUT",
      );
      await expectDetail(await api(t, `${base}/commits/`), 404, "commits");
      await expectDetail(await api(t, `${base}/`, { method: "DELETE" }), 404, "DELETE");
      await expectDetail(await api(t, `${base}/files/`), 404, "files");
      const blobs = listBlobs(t);
      await expectDetail(await uploadFile(`${base}/files/`, { name: "~/x.js" }), 404, "upload");
      expect(listBlobs(t)).toEqual(blobs);
      const release = await api(t, "/api/0/organizations/sluice/releases/web@1/");
      expect(release.status).toBe(200);
      expect(((await release.json()) as { dateReleased: unknown }).dateReleased).toBeNull();
    });

    it("does not reach another project's release files by id", async () => {
      const uploaded = await uploadFile("/api/0/projects/sluice/default/releases/web@1/files/", {
        name: "~/scoped.js",
      });
      expect(uploaded.status).toBe(201);
      const { id } = (await uploaded.json()) as { id: string };
      const other = `/api/0/projects/sluice/other/releases/web@1/files/${id}/`;
      await expectDetail(await api(t, other), 404, "GET file");
      await expectDetail(await json("PUT", other, { name: "~/moved.js" }), 404, "PUT file");
      await expectDetail(await api(t, other, { method: "DELETE" }), 404, "DELETE file");
      const mine = await api(t, `/api/0/projects/sluice/default/releases/web@1/files/${id}/`);
      expect(((await mine.json()) as { name: string }).name).toBe("~/scoped.js");
    });

    it("serves a release shared by both projects under either, and deletes it under its own", async () => {
      expect((await api(t, "/api/0/projects/sluice/other/releases/shared@1/")).status).toBe(200);
      expect((await api(t, "/api/0/projects/sluice/default/releases/shared@1/")).status).toBe(200);
      const list = await api(t, "/api/0/projects/sluice/other/releases/");
      expect(((await list.json()) as { version: string }[]).map((r) => r.version)).toEqual([
        "shared@1",
      ]);
      const deleted = await api(t, "/api/0/projects/sluice/other/releases/shared@1/", {
        method: "DELETE",
      });
      expect(deleted.status).toBe(204);
    });
  });

  describe("refused uploads write nothing to the blob store", () => {
    const postChunks = (parts: { field: string; name: string; bytes: Uint8Array }[]) => {
      const form = new FormData();
      for (const part of parts) form.append(part.field, new Blob([part.bytes]), part.name);
      return fetch(`${t.url}/api/0/organizations/sluice/chunk-upload/`, {
        method: "POST",
        body: form,
        headers: { Authorization: `Bearer ${t.token}` },
      });
    };

    it("a chunk request with one bad chunk stores none of its chunks", async () => {
      const good = new TextEncoder().encode("a good chunk");
      const blobs = listBlobs(t);
      const response = await postChunks([
        { field: "file", name: sha1(good), bytes: good },
        { field: "file", name: "0".repeat(40), bytes: new TextEncoder().encode("bad") },
      ]);
      expect(response.status).toBe(400);
      expect(listBlobs(t)).toEqual(blobs);
      expect(await countRows(t.sql, "upload_chunks")).toBe(0);
    });

    it("a second release file of the same name stores nothing", async () => {
      const path = "/api/0/organizations/sluice/releases/web@1/files/";
      expect((await uploadFile(path, { name: "~/twice.js", bytes: "one" })).status).toBe(201);
      const blobs = listBlobs(t);
      const again = await uploadFile(path, { name: "~/twice.js", bytes: "two" });
      expect(again.status).toBe(409);
      expect(listBlobs(t)).toEqual(blobs);
    });

    it("a release file for an unknown release stores nothing", async () => {
      const blobs = listBlobs(t);
      const response = await uploadFile("/api/0/organizations/sluice/releases/nope@9/files/", {
        name: "~/a.js",
        bytes: "unknown release",
      });
      await expectDetail(response, 404, "unknown release");
      expect(listBlobs(t)).toEqual(blobs);
    });

    it.each([
      ["NUL in a file's URL", { url: "~/a\u0000.js" }, /NUL/],
      ["NUL in a file's header", { url: "~/a.js", headers: { Sourcemap: "a\u0000.map" } }, /NUL/],
      ["a URL too long for the database's index", { url: `~/${"日".repeat(1000)}.js` }, /longer/],
    ])("an assembly of a bundle with %s is an error and stores no files", async (_, entry, why) => {
      const zip = zipSync({
        "manifest.json": strToU8(JSON.stringify({ files: { "a.js": entry }, release: "web@1" })),
        "files/a.js": strToU8(`a(); // ${JSON.stringify(entry)}`),
      });
      expect((await postChunks([{ field: "file", name: sha1(zip), bytes: zip }])).status).toBe(200);
      const blobs = listBlobs(t);
      const answer = await json("POST", "/api/0/organizations/sluice/artifactbundle/assemble/", {
        checksum: sha1(zip),
        chunks: [sha1(zip)],
        projects: ["default"],
      });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toMatchObject({
        state: "error",
        detail: expect.stringMatching(why),
      });
      expect(listBlobs(t)).toEqual(blobs);
      expect(await countRows(t.sql, "artifacts", "bundle_id IS NOT NULL")).toBe(0);
    });

    it("an assembly of a bundle that is not a bundle stores no files", async () => {
      const bytes = new TextEncoder().encode("PK\u0003\u0004 not really a zip");
      expect((await postChunks([{ field: "file", name: sha1(bytes), bytes }])).status).toBe(200);
      const blobs = listBlobs(t);
      const answer = await json("POST", "/api/0/organizations/sluice/artifactbundle/assemble/", {
        checksum: sha1(bytes),
        chunks: [sha1(bytes)],
        projects: ["default"],
      });
      expect(await answer.json()).toMatchObject({ state: "error" });
      expect(listBlobs(t)).toEqual(blobs);
    });
  });

  describe("API JSON bodies are bounded", () => {
    it("answers 413 past SLUICE_MAX_API_BODY_BYTES, with or without Content-Length", async () => {
      const max = t.config.maxApiBodyBytes;
      const big = JSON.stringify({ version: "big@1", projects: ["default"], ref: "r".repeat(max) });
      const declared = await json("POST", "/api/0/organizations/sluice/releases/", big);
      expect(await expectDetail(declared, 413, "declared")).toMatch(String(max));
      const encoder = new TextEncoder();
      const chunked = await fetch(`${t.url}/api/0/organizations/sluice/releases/`, {
        method: "POST",
        headers: { Authorization: `Bearer ${t.token}`, "Content-Type": "application/json" },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < 4; i++) controller.enqueue(encoder.encode(big.slice(0, max / 2)));
            controller.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
      await expectDetail(chunked, 413, "chunked");
      const issue = await json("PUT", `/api/0/issues/${issueId}/`, big);
      await expectDetail(issue, 413, "issue update");
      expect(await countRows(t.sql, "releases", "version = 'big@1'")).toBe(0);
    });

    it.each([
      ["a JSON body", "/api/0/organizations/sluice/releases/", "application/json", 413],
      [
        "a chunk upload",
        "/api/0/organizations/sluice/chunk-upload/",
        "multipart/form-data; boundary=x",
        // Sentry's chunk endpoint answers 400 {"error": "Request too large"}.
        400,
      ],
      [
        "a release file",
        "/api/0/organizations/sluice/releases/web@1/files/",
        "multipart/form-data; boundary=x",
        413,
      ],
    ])(
      "refuses %s whose declared length is past its limit without waiting for it",
      async (_, path, type, status) => {
        const answer = await rawRequest(
          t.url,
          [
            `POST ${path} HTTP/1.1`,
            `Host: 127.0.0.1`,
            `Authorization: Bearer ${t.token}`,
            `Content-Type: ${type}`,
            "Content-Length: 1000000000",
            "",
            "{",
          ].join("\r\n"),
        );
        expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect(answer.toLowerCase()).toContain("connection: close");
      },
    );

    it("answers 400 to JSON nested deeper than 64 levels, before parsing it", async () => {
      const nested = (depth: number) =>
        `{"commits":[{"id":"x","data":${"[".repeat(depth - 3)}${"]".repeat(depth - 3)}}]}`;
      const deep = await json("PUT", "/api/0/organizations/sluice/releases/web@1/", nested(65));
      expect(await expectDetail(deep, 400, "deep")).toMatch(/nest/);
      const ok = await json("PUT", "/api/0/organizations/sluice/releases/web@1/", nested(64));
      expect(ok.status).toBe(200);
      const bomb = "[".repeat(500_000);
      const started = performance.now();
      await expectDetail(
        await json("POST", "/api/0/organizations/sluice/releases/", bomb),
        400,
        "bomb",
      );
      expect(performance.now() - started).toBeLessThan(2_000);
    });

    it("answers 400 to a body that is not UTF-8", async () => {
      const response = await api(t, "/api/0/organizations/sluice/releases/", {
        method: "POST",
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      });
      await expectDetail(response, 400, "not utf-8");
    });
  });
});
