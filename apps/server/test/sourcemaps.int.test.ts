import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { S3RVER_CREDENTIALS, startTestS3 } from "@sluice/storage/testing";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, countRows, startTestSluice, type TestSluice, waitFor } from "./harness.ts";

const run = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const sentryCli = join(root, "node_modules/.bin/sentry-cli");
const sluiceBin = join(root, "apps/server/bin/sluice.js");
const clients = new URL("./clients/", import.meta.url).pathname;
const appSource = new URL("./fixtures/minify-app/src/", import.meta.url).pathname;

type Frame = {
  filename?: string;
  abs_path?: string;
  function?: string;
  lineno?: number;
  colno?: number;
  context_line?: string;
  pre_context?: string[];
  post_context?: string[];
  in_app?: boolean;
  data?: { sourcemap?: string; resolved_with?: string };
};
type ExceptionValue = {
  type: string;
  value: string;
  stacktrace: { frames: Frame[] };
  raw_stacktrace?: { frames: Frame[] };
};
type StoredEvent = {
  issueId: string;
  payload: {
    exception: { values: ExceptionValue[] };
    errors?: { type: string; url: string; reason: string }[];
  };
};

type ReleaseJson = {
  version: string;
  dateReleased: string | null;
  projects: { slug: string }[];
  commitCount: number;
  deployCount: number;
  lastEvent: string | null;
  newGroups: number;
};
type IssueJson = { id: string; count: string; title: string };
type EventJson = { entries: { type: string; data: { values: ExceptionValue[] } }[] };

/** Where the test Sluice keeps blobs, and how a test damages one there. */
type BlobPlace = {
  env: Record<string, string>;
  remove(key: string): Promise<void>;
  overwrite(key: string, body: string): Promise<void>;
  stop(): Promise<void>;
};

const places: [string, (t: () => TestSluice) => Promise<BlobPlace>][] = [
  [
    "a shared directory",
    async (t) => ({
      env: {},
      remove: async (key) => unlinkSync(join(t().config.dataDir, "blobs", key)),
      overwrite: async (key, body) => writeFileSync(join(t().config.dataDir, "blobs", key), body),
      stop: async () => {},
    }),
  ],
  [
    "an S3 bucket",
    async () => {
      const s3 = await startTestS3();
      const prefix = "sluice/";
      return {
        env: {
          SLUICE_S3_BUCKET: s3.bucket,
          SLUICE_S3_PREFIX: prefix,
          SLUICE_S3_ENDPOINT: s3.endpoint,
          SLUICE_S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          SLUICE_S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        },
        remove: (key) => s3.deleteObject(prefix + key),
        overwrite: (key, body) => s3.putObject(prefix + key, body),
        stop: () => s3.stop(),
      };
    },
  ],
];

describe.each(places)("source maps uploaded with the real sentry-cli, blobs in %s", (_, place) => {
  let t: TestSluice;
  let blobs: BlobPlace;
  let work: string;
  let cliEnv: NodeJS.ProcessEnv;

  const getJson = async <T>(path: string): Promise<T> => {
    const response = await api(t, path);
    expect(response.status).toBe(200);
    return (await response.json()) as T;
  };

  /** Runs sentry-cli against the test Sluice; rejects unless it exits 0. */
  const cli = async (...args: string[]) =>
    (await run(sentryCli, args, { cwd: work, env: cliEnv, timeout: 60_000 })).stdout;

  /** Builds the fixture app into `dir` (a CommonJS bundle with its source map). */
  const bundle = async (dir: string, file: string, options: Parameters<typeof build>[0]) => {
    await build({
      entryPoints: [join(work, "src/main.js")],
      bundle: true,
      platform: "node",
      format: "cjs",
      sourcemap: true,
      outfile: join(work, dir, file),
      logLevel: "silent",
      ...options,
    });
    return join(work, dir, file);
  };

  /** Runs the bundle in a real @sentry/node process; returns the stored event once processed. */
  const throwIn = async (bundlePath: string, release: string): Promise<StoredEvent> => {
    const before = await countRows(t.sql, "events");
    await run(process.execPath, [`${clients}bundle-client.mjs`, t.dsn, bundlePath, release], {
      timeout: 30_000,
    });
    await waitFor(
      async () =>
        (await countRows(t.sql, "events")) === before + 1 &&
        (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      20_000,
      "the event stored and processed",
    );
    const row = await t.sql.query(
      `SELECT issue_id::text AS "issueId", payload FROM events
        WHERE payload->>'release' = $1 ORDER BY received_at DESC LIMIT 1`,
      [release],
    );
    return row.rows[0] as StoredEvent;
  };

  const framesOf = (event: StoredEvent) =>
    (event.payload.exception.values[0] as ExceptionValue).stacktrace.frames;
  const frameIn = (event: StoredEvent, fn: string) =>
    framesOf(event).find((f) => f.function === fn && f.filename === "src/config.js");

  /** Uploads one legacy release file through the REST API as sentry-cli 2.x does. */
  const uploadReleaseFile = async (release: string, name: string, bytes: Uint8Array) => {
    const form = new FormData();
    form.set("file", new Blob([bytes]), name.split("/").pop());
    form.set("name", name);
    const response = await fetch(
      `${t.url}/api/0/projects/sluice/default/releases/${encodeURIComponent(release)}/files/`,
      { method: "POST", body: form, headers: { Authorization: `Bearer ${t.token}` } },
    );
    expect(response.status).toBe(201);
  };

  const createRelease = async (version: string) => {
    const response = await api(t, "/api/0/projects/sluice/default/releases/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ version }),
    });
    expect(response.status).toBe(201);
  };

  beforeAll(async () => {
    blobs = await place(() => t);
    t = await startTestSluice({ env: blobs.env });
    work = mkdtempSync(join(tmpdir(), "sluice-sourcemaps-"));
    cpSync(appSource, join(work, "src"), { recursive: true });
    cliEnv = {
      PATH: process.env.PATH,
      HOME: work,
      SENTRY_URL: t.url,
      SENTRY_AUTH_TOKEN: t.token,
      SENTRY_ORG: "sluice",
      SENTRY_PROJECT: "default",
      SENTRY_LOG_LEVEL: "warn",
    };
    const git = (...args: string[]) => run("git", args, { cwd: work });
    await git("init", "-q");
    await git("-c", "user.email=ci@example.com", "-c", "user.name=CI", "add", ".");
    await git("-c", "user.email=ci@example.com", "-c", "user.name=CI", "commit", "-qm", "app");
  });
  afterAll(async () => {
    await t?.stop();
    await blobs?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("creates, finalizes, lists and deploys a release, and sets its commits", async () => {
    expect(await cli("releases", "new", "app@1.0.0")).toContain("app@1.0.0");
    let release = await getJson<ReleaseJson>("/api/0/organizations/sluice/releases/app@1.0.0/");
    expect(release).toMatchObject({ version: "app@1.0.0", dateReleased: null });
    expect(release.projects).toEqual([expect.objectContaining({ slug: "default" })]);

    await cli("releases", "finalize", "app@1.0.0");
    await cli("releases", "deploys", "app@1.0.0", "new", "-e", "production", "-n", "deploy 1");
    await cli("releases", "set-commits", "app@1.0.0", "--local");
    release = await getJson<ReleaseJson>("/api/0/organizations/sluice/releases/app@1.0.0/");
    expect(release.dateReleased).not.toBeNull();
    expect(release.commitCount).toBe(1);
    expect(release.deployCount).toBe(1);
    const deploys = await getJson<unknown[]>(
      "/api/0/organizations/sluice/releases/app@1.0.0/deploys/",
    );
    expect(deploys).toEqual([
      expect.objectContaining({ environment: "production", name: "deploy 1" }),
    ]);
    expect(await cli("releases", "list")).toContain("app@1.0.0");
  });

  it("injects debug ids and uploads artifact bundles with --wait", async () => {
    await bundle("build-a", "app.min.js", { minify: true });
    await bundle("build-b", "bundle.js", {
      minifyWhitespace: true,
      minifySyntax: true,
      banner: { js: "/* build b: another minification */" },
    });
    await cli("sourcemaps", "inject", "build-a", "build-b");
    expect(readFileSync(join(work, "build-a/app.min.js"), "utf8")).toMatch(/\/\/# debugId=/);
    for (const dir of ["build-a", "build-b"]) {
      await cli("sourcemaps", "upload", "--release", "app@1.0.0", "--wait", dir);
    }
    const bundles = await t.sql.query("SELECT state, file_count FROM artifact_bundles");
    expect(bundles.rows).toEqual([
      { state: "ok", file_count: "2" },
      { state: "ok", file_count: "2" },
    ]);
    const maps = await countRows(
      t.sql,
      "artifacts",
      "type = 'source_map' AND debug_id IS NOT NULL",
    );
    expect(maps).toBe(2);
    const listed = await getJson<unknown[]>(
      "/api/0/projects/sluice/default/files/artifact-bundles/",
    );
    expect(listed).toHaveLength(2);
  });

  it("shows the original file, line, function and context of an error thrown in a minified bundle", async () => {
    const event = await throwIn(join(work, "build-a/app.min.js"), "app@1.0.0");
    const frame = frameIn(event, "parseConfig");
    expect(frame).toMatchObject({
      filename: "src/config.js",
      abs_path: "~/src/config.js",
      lineno: 5,
      in_app: true,
      data: { resolved_with: "debug-id" },
    });
    expect(frame?.context_line).toContain(
      'throw new Error(["invalid config:", settings.name].join(" "));',
    );
    expect(frame?.pre_context?.at(-1)).toContain("if (!settings.ok) {");
    expect(frame?.post_context?.[0]).toContain("}");
    expect(frameIn(event, "loadSettings")).toBeUndefined();
    expect(
      framesOf(event).some((f) => f.filename === "src/main.js" && f.function === "loadSettings"),
    ).toBe(true);
    const raw = (event.payload.exception.values[0] as ExceptionValue).raw_stacktrace;
    expect(raw?.frames.some((f) => f.filename?.endsWith("build-a/app.min.js"))).toBe(true);

    // The API's event shows the same frames.
    const json = await getJson<EventJson>(`/api/0/issues/${event.issueId}/events/latest/`);
    const exception = json.entries.find((e) => e.type === "exception");
    const apiFrames = exception?.data.values[0]?.stacktrace.frames ?? [];
    expect(apiFrames.some((f) => f.filename === "src/config.js" && f.lineno === 5)).toBe(true);
  });

  it("groups the same error from two differently minified builds into one issue", async () => {
    const a = await throwIn(join(work, "build-a/app.min.js"), "app@1.0.0");
    const b = await throwIn(join(work, "build-b/bundle.js"), "app@1.0.0");
    expect(frameIn(b, "parseConfig")).toMatchObject({ filename: "src/config.js", lineno: 5 });
    const rawA = (a.payload.exception.values[0] as ExceptionValue).raw_stacktrace?.frames ?? [];
    const rawB = (b.payload.exception.values[0] as ExceptionValue).raw_stacktrace?.frames ?? [];
    expect(rawA.at(-1)?.colno).not.toBe(rawB.at(-1)?.colno);
    expect(b.issueId).toBe(a.issueId);
    const issues = await getJson<IssueJson[]>("/api/0/projects/sluice/default/issues/?query=");
    const issue = issues.find((i) => i.id === a.issueId);
    expect(issue?.count).toBe("3");
    expect(issue?.title).toBe("Error: invalid config: production");
  });

  describe("a map that cannot be used leaves the event intact with the reason", () => {
    let plainBundle: string;
    beforeAll(async () => {
      plainBundle = await bundle("build-c", "app.js", { minify: true });
      const name = `~${plainBundle}`;
      const minified = readFileSync(plainBundle);
      const map = readFileSync(`${plainBundle}.map`);
      await createRelease("app@2.0.0");
      await uploadReleaseFile("app@2.0.0", name, minified);
      await createRelease("app@3.0.0");
      await uploadReleaseFile("app@3.0.0", name, minified);
      await uploadReleaseFile("app@3.0.0", `${name}.map`, new TextEncoder().encode("{not a map"));
      await createRelease("app@4.0.0");
      await uploadReleaseFile("app@4.0.0", name, minified);
      await uploadReleaseFile("app@4.0.0", `${name}.map`, map);
    });

    const expectIntact = (event: StoredEvent) => {
      expect(event.issueId).not.toBeNull();
      const value = event.payload.exception.values[0] as ExceptionValue;
      expect(value).toMatchObject({ type: "Error", value: "invalid config: production" });
      expect(value.raw_stacktrace).toBeUndefined();
      expect(framesOf(event).some((f) => f.filename === plainBundle && f.lineno === 1)).toBe(true);
    };
    const errorFor = (event: StoredEvent, url: string) =>
      event.payload.errors?.find((e) => e.url === url);

    it("a missing map", async () => {
      const event = await throwIn(plainBundle, "app@2.0.0");
      expectIntact(event);
      expect(errorFor(event, `~${plainBundle}.map`)).toMatchObject({
        type: "js_no_source",
        reason: `release app@2.0.0 has no source map at ~${plainBundle}.map`,
      });
    });

    it("a corrupt map", async () => {
      const event = await throwIn(plainBundle, "app@3.0.0");
      expectIntact(event);
      expect(errorFor(event, `~${plainBundle}.map`)).toMatchObject({
        type: "js_invalid_sourcemap",
        reason: expect.stringContaining("the source map cannot be read"),
      });
    });

    it("a map uploaded for another release", async () => {
      const event = await throwIn(plainBundle, "app@5.0.0");
      expectIntact(event);
      expect(errorFor(event, plainBundle)).toMatchObject({
        type: "js_no_source",
        reason: "release app@5.0.0 has no file at this URL",
      });
    });

    it("while the right release maps the same bundle through its legacy release files", async () => {
      const event = await throwIn(plainBundle, "app@4.0.0");
      expect(frameIn(event, "parseConfig")).toMatchObject({
        lineno: 5,
        data: { resolved_with: "release" },
      });
    });
  });

  it("sends an event and lists issues", async () => {
    const sent = await run(
      sentryCli,
      ["send-event", "-m", "hello from sentry-cli", "-r", "app@1.0.0"],
      {
        cwd: work,
        env: { ...cliEnv, SENTRY_DSN: t.dsn },
        timeout: 30_000,
      },
    );
    expect(sent.stdout).toContain("Event id");
    await waitFor(
      async () => (await countRows(t.sql, "events", "processed_at IS NULL")) === 0,
      20_000,
      "the event processed",
    );
    expect(await cli("issues", "list")).toContain("hello from sentry-cli");
    const release = await getJson<ReleaseJson>("/api/0/organizations/sluice/releases/app@1.0.0/");
    expect(release.lastEvent).not.toBeNull();
    expect(release.newGroups).toBeGreaterThanOrEqual(2);
  });

  it("sluice verify finds blobs that are missing or corrupt, and exits 1", async () => {
    const env = {
      ...process.env,
      DATABASE_URL: t.config.databaseUrl as string,
      SLUICE_DATA_DIR: t.config.dataDir,
      LOG_LEVEL: "warn",
      ...blobs.env,
    };
    const clean = await run(process.execPath, [sluiceBin, "verify"], { env });
    expect(clean.stdout).toMatch(/: 0 missing or corrupt/);

    const maps = await t.sql.query(
      "SELECT id::text, blob_key FROM artifacts WHERE type = 'source_map' ORDER BY id LIMIT 2",
    );
    const [gone, bad] = maps.rows as { id: string; blob_key: string }[];
    if (!gone || !bad) throw new Error("expected two source maps");
    await blobs.remove(gone.blob_key);
    await blobs.overwrite(bad.blob_key, "flipped bits");
    const failed = await run(process.execPath, [sluiceBin, "verify"], { env }).catch((e) => e);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`missing\tartifacts\t${gone.id}\t${gone.blob_key}`);
    expect(failed.stdout).toContain(`corrupt\tartifacts\t${bad.id}\t${bad.blob_key}`);
  });
});
