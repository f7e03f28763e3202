import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { openTestPool } from "@sluice/db/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createBackup, RestoreRefused, restoreBackup } from "../src/backup/backup.ts";
import { verifyBlobs } from "../src/commands/verify-blobs.ts";
import { readConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { startServices } from "../src/services.ts";
import {
  api,
  countRows,
  createTestDatabase,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "./harness.ts";

const run = promisify(execFile);
const RELEASE = "drill@1.0.0";
const MINIFIED_URL = "http://example.com/static/app.min.js";
/** Original source: the error is thrown on line 11. */
const ORIGINAL = Array.from({ length: 12 }, (_, i) =>
  i === 10 ? '  throw new Error("drill");' : `// line ${i + 1}`,
).join("\n");
/** A source map sending generated line 1, column 0 to line 11 of src/drill.js ("AAUA": +10 lines). */
const SOURCE_MAP = JSON.stringify({
  version: 3,
  file: "app.min.js",
  sources: ["src/drill.js"],
  sourcesContent: [ORIGINAL],
  names: [],
  mappings: "AAUA",
});
const MINIFIED =
  'function a(){throw new Error("drill")}a();\n//# sourceMappingURL=app.min.js.map\n';

const newId = () => crypto.randomUUID().replaceAll("-", "");

function envelope(id: string, message: string, attachment: Buffer | null): Buffer {
  const event = JSON.stringify({
    event_id: id,
    platform: "javascript",
    release: RELEASE,
    level: "error",
    exception: {
      values: [
        {
          type: "Error",
          value: message,
          stacktrace: {
            frames: [
              {
                abs_path: MINIFIED_URL,
                filename: "app.min.js",
                function: "a",
                lineno: 1,
                colno: 1,
                in_app: true,
              },
            ],
          },
        },
      ],
    },
  });
  const parts: Buffer[] = [Buffer.from(`{"event_id":"${id}"}\n{"type":"event"}\n${event}\n`)];
  if (attachment)
    parts.push(
      Buffer.from(`{"type":"attachment","length":${attachment.length},"filename":"log.txt"}\n`),
      attachment,
      Buffer.from("\n"),
    );
  return Buffer.concat(parts);
}

async function du(dir: string): Promise<number> {
  const { stdout } = await run("du", ["-sb", dir]);
  return Number(stdout.split("\t")[0]);
}

describe("the restore drill", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it("backs up while ingest runs, restores into an empty database and blob store, and serves on", async () => {
    const source = await startTestSluice({ redis: false });
    let sourceStopped = false;
    cleanups.push(async () => {
      if (!sourceStopped) await source.stop();
    });
    const ingestUrl = (t: TestSluice) =>
      `${t.url}/api/${t.projectId}/envelope/?sentry_key=${t.publicKey}`;
    const post = async (t: TestSluice, body: Buffer) => {
      const r = await fetch(ingestUrl(t), { method: "POST", body });
      await r.arrayBuffer();
      return r.status;
    };

    // A release with a minified file and its source map.
    expect(
      (
        await api(source, "/api/0/projects/sluice/default/releases/", {
          method: "POST",
          body: JSON.stringify({ version: RELEASE }),
        })
      ).status,
    ).toBe(201);
    for (const [name, bytes] of [
      ["~/static/app.min.js", MINIFIED],
      ["~/static/app.min.js.map", SOURCE_MAP],
    ] as const) {
      const form = new FormData();
      form.set("file", new Blob([bytes]), name.split("/").pop());
      form.set("name", name);
      const r = await fetch(
        `${source.url}/api/0/projects/sluice/default/releases/${RELEASE}/files/`,
        { method: "POST", body: form, headers: { Authorization: `Bearer ${source.token}` } },
      );
      expect(r.status).toBe(201);
    }

    // Events with attachments, in a few issues; every one acknowledged.
    const acknowledged: { id: string; at: number }[] = [];
    const shared = randomBytes(2000);
    for (let i = 0; i < 60; i++) {
      const id = newId();
      const attachment = i % 3 === 0 ? shared : i % 3 === 1 ? randomBytes(1500) : null;
      expect(
        await post(source, envelope(id, `drill ${["alpha", "beta", "gamma"][i % 3]}`, attachment)),
      ).toBe(200);
      acknowledged.push({ id, at: performance.now() });
    }
    await waitFor(
      async () => (await countRows(source.sql, "events", "processed_at IS NULL")) === 0,
      30_000,
      "events processed",
    );
    const symbolicated = await source.sql.query(
      "SELECT payload FROM events WHERE payload->>'release' = $1 LIMIT 1",
      [RELEASE],
    );
    const frameOf = (payload: {
      exception: { values: { stacktrace: { frames: { filename: string; lineno: number }[] } }[] };
    }) => payload.exception.values[0]?.stacktrace.frames[0];
    expect(frameOf(symbolicated.rows[0].payload)).toMatchObject({
      filename: "src/drill.js",
      lineno: 11,
    });
    const issuesBefore = (
      await source.sql.query("SELECT title, times_seen::int AS n FROM issues ORDER BY title")
    ).rows;
    // Grouped by their (symbolicated) stack trace: one issue.
    expect(issuesBefore.length).toBeGreaterThanOrEqual(1);

    // Backup while ingest goes on.
    let loading = true;
    const load = (async () => {
      while (loading) {
        const id = newId();
        const body = Buffer.from(
          `{"event_id":"${id}"}\n{"type":"event"}\n{"message":"drill during the backup"}\n`,
        );
        if ((await post(source, body)) === 200) acknowledged.push({ id, at: performance.now() });
      }
    })();
    const dir = mkdtempSync(join(tmpdir(), "sluice-backup-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    await new Promise((r) => setTimeout(r, 300));
    const backupStarted = performance.now();
    const manifest = await createBackup(source.services, join(dir, "b"), () => {});
    const backupMs = performance.now() - backupStarted;
    await new Promise((r) => setTimeout(r, 300));
    loading = false;
    await load;
    expect(manifest.blobs.missing).toEqual([]);
    expect(manifest.blobs.count).toBeGreaterThanOrEqual(2 + 21);
    expect(manifest.counts.issues).toBeGreaterThanOrEqual(1);
    const backupBytes = await du(join(dir, "b"));

    // Wipe: the database and the blob directory go.
    const sourceConfig = source.config;
    await source.stop();
    sourceStopped = true;

    // Restore into a new, empty database and blob store.
    const target = await createTestDatabase();
    cleanups.push(() => target.drop());
    const dataDir = mkdtempSync(join(tmpdir(), "sluice-restored-"));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const result = readConfig({
      DATABASE_URL: target.url,
      SLUICE_DATA_DIR: dataDir,
      LOG_LEVEL: "error",
      SLUICE_QUEUE_PREFIX: sourceConfig.queuePrefix,
    });
    if (!result.ok) throw new Error(result.problems.join("; "));
    const services = await startServices(result.config, createLogger("error", "test"), {
      schema: "migrate",
    });
    let restoreMs = 0;
    try {
      const restoreStarted = performance.now();
      await restoreBackup(services, join(dir, "b"), () => {});
      const verified = await verifyBlobs(services, () => {});
      restoreMs = performance.now() - restoreStarted;
      expect(verified.problems).toEqual([]);
      expect(verified.checked).toBeGreaterThan(0);
      // Restoring again is refused: the database is no longer empty.
      const again = await restoreBackup(services, join(dir, "b"), () => {}).catch((e) => e);
      expect(again).toBeInstanceOf(RestoreRefused);
      expect(String(again.message)).toMatch(
        /^the database is not empty \(rows in .*organizations.*\): restore only into an empty database$/,
      );
    } finally {
      await services.close();
    }

    // Sluice on the restored database and blobs.
    const restored = await startTestSluice({
      redis: false,
      databaseUrl: target.url,
      env: {
        SLUICE_DATA_DIR: dataDir,
        SLUICE_SWEEP_INTERVAL_MS: "200",
        SLUICE_SWEEP_MIN_AGE_MS: "0",
      },
    });
    cleanups.push(() => restored.stop());
    await waitFor(
      async () => (await countRows(restored.sql, "events", "processed_at IS NULL")) === 0,
      30_000,
      "restored events processed",
    );
    const present = new Set(
      (
        await restored.sql.query("SELECT replace(event_id::text, '-', '') AS id FROM events")
      ).rows.map((r) => r.id as string),
    );
    const missing = acknowledged.filter((a) => !present.has(a.id));
    // Everything acknowledged before the backup began is there.
    expect(missing.filter((m) => m.at < backupStarted)).toEqual([]);
    // The same issues, each counting exactly its events.
    const issuesAfter = (
      await restored.sql.query(
        `SELECT i.title, i.times_seen::int AS n, (SELECT count(*)::int FROM events e WHERE e.issue_id = i.id) AS events
           FROM issues i ORDER BY title`,
      )
    ).rows;
    for (const before of issuesBefore) {
      const after = issuesAfter.find((i) => i.title === before.title);
      expect(after?.n).toBe(before.n);
    }
    for (const issue of issuesAfter) expect(issue.n).toBe(issue.events);

    // A retry of an event acknowledged before the backup is still one event.
    const first = acknowledged[0]?.id as string;
    expect(await post(restored, envelope(first, "drill alpha", shared))).toBe(200);
    expect(await countRows(restored.sql, "events", `event_id = '${first}'`)).toBe(1);
    // A new event of the release is symbolicated with the restored source map.
    const fresh = newId();
    expect(await post(restored, envelope(fresh, "drill after", null))).toBe(200);
    await waitFor(
      async () =>
        (await countRows(
          restored.sql,
          "events",
          `event_id = '${fresh}' AND processed_at IS NOT NULL`,
        )) === 1,
      20_000,
      "the new event processed",
    );
    const after = await restored.sql.query("SELECT payload FROM events WHERE event_id = $1", [
      fresh,
    ]);
    expect(frameOf(after.rows[0].payload)).toMatchObject({ filename: "src/drill.js", lineno: 11 });
    const issues = await api(restored, "/api/0/projects/sluice/default/issues/");
    expect(issues.status).toBe(200);

    console.log(
      `restore drill: backup ${backupBytes} bytes (${manifest.blobs.count} blobs, ${manifest.counts.events} events) in ${backupMs.toFixed(0)} ms while ingest ran; ` +
        `restore + verify (RTO on this machine) ${restoreMs.toFixed(0)} ms; ` +
        `acknowledged events missing after the restore (RPO of the dump path): ${missing.length} of ${acknowledged.length}, all acknowledged after the snapshot began`,
    );
  }, 180_000);

  it("`sluice backup` and `sluice config print` from the command line", async () => {
    const t = await startTestSluice({ redis: false });
    cleanups.push(() => t.stop());
    const dir = mkdtempSync(join(tmpdir(), "sluice-backup-cli-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const bin = new URL("../bin/sluice.js", import.meta.url).pathname;
    const url = new URL(t.config.databaseUrl ?? "");
    url.password = "s3cret-pw";
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: t.config.databaseUrl ?? "",
      SLUICE_DATA_DIR: t.config.dataDir,
      LOG_LEVEL: "warn",
    };
    delete env.REDIS_URL;
    const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, [bin, ...args], { env: { ...env, ...extra } }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }),
      );
    let r = await cli(["backup", "create", join(dir, "b")]);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/backup written: snapshot .*, schema \d+, /);
    r = await cli(["backup", "restore", join(dir, "b")]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /sluice: the database is not empty \(rows in .*\): restore only into an empty database/,
    );
    r = await cli(["config", "print"], {
      DATABASE_URL: url.toString(),
      SLUICE_S3_SECRET_ACCESS_KEY: "very-secret",
    });
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/s3cret-pw|very-secret/);
    expect(r.out).toMatch(/^DATABASE_URL=postgres:\/\/postgres:\*\*\*\*@/m);
    expect(r.out).toMatch(/^SLUICE_RETENTION_DAYS=90$/m);
    expect(r.out).toMatch(/^SLUICE_S3_SECRET_ACCESS_KEY=\*\*\*\*$/m);
  }, 120_000);

  it("a backup of the embedded Postgres 18 restores into an external Postgres 15", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sluice-embedded-backup-"));
    // As root the embedded Postgres runs as the postgres user, who must reach its directory.
    chmodSync(dataDir, 0o755);
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const target = await createTestDatabase();
    cleanups.push(() => target.drop());
    const bin = new URL("../bin/sluice.js", import.meta.url).pathname;
    const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_DATA_DIR: dataDir, LOG_LEVEL: "warn" };
    for (const name of ["DATABASE_URL", "REDIS_URL", "PORT", "SLUICE_URL"]) delete env[name];
    const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, [bin, ...args], { env: { ...env, ...extra } }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }),
      );
    expect((await cli(["projects", "create", "web", "--json"])).code).toBe(0);
    const dir = join(dataDir, "backup");
    expect(await cli(["backup", "create", dir])).toMatchObject({ code: 0 });
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    expect(manifest.postgres.serverVersion).toMatch(/^18\./);
    expect(manifest.counts.projects).toBe(1);
    const restored = await cli(["backup", "restore", dir], { DATABASE_URL: target.url });
    expect(restored).toMatchObject({ code: 0 });
    expect(await cli(["verify"], { DATABASE_URL: target.url })).toMatchObject({ code: 0 });
    const pool = openTestPool(target.url);
    try {
      const version = (await pool.query("SHOW server_version")).rows[0].server_version;
      expect(version).toMatch(/^15\./);
      const projects = await pool.query("SELECT slug FROM projects");
      expect(projects.rows).toEqual([{ slug: "web" }]);
    } finally {
      await pool.end();
    }
  }, 180_000);
});
