import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { countRows, startTestSluice, waitFor } from "./harness.ts";

const run = promisify(execFile);
const PG_BIN = "/usr/lib/postgresql/15/bin";
const available =
  existsSync(join(PG_BIN, "initdb")) &&
  ["/usr/bin/pgbackrest", "/bin/pgbackrest"].some((p) => existsSync(p));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(),
      );
    });
  });
}

const newId = () => crypto.randomUUID().replaceAll("-", "");

/**
 * Point-in-time recovery of an external Postgres 15 with WAL archived by
 * pgBackRest (docs/operations.md §8.9): a cluster of its own (initdb on a
 * free port, archive_command through pgbackrest), a full backup, two
 * batches of events, then a restore to a moment between them.
 */
describe.skipIf(!available)("point-in-time recovery with pgBackRest", () => {
  const base = mkdtempSync(join(tmpdir(), "sluice-pitr-"));
  const data = join(base, "data");
  const socket = join(base, "sock");
  const config = join(base, "pgbackrest.conf");
  const asRoot = process.getuid?.() === 0;
  let ids: { uid: number; gid: number } | Record<string, never> = {};
  let port = 0;
  let running = false;

  /** Runs a Postgres or pgBackRest binary as the `postgres` user when we are root (Postgres refuses root). */
  const as = (file: string, args: string[]) =>
    run(file, args, { ...ids, cwd: base, env: { ...process.env, PGHOST: socket } });
  const pgctl = (...args: string[]) =>
    as(join(PG_BIN, "pg_ctl"), ["-D", data, "-l", join(base, "postgres.log"), "-w", ...args]);
  const backrest = (...args: string[]) =>
    as("pgbackrest", [`--config=${config}`, "--stanza=sluice", ...args]);

  afterAll(async () => {
    if (running) await pgctl("stop", "-m", "immediate").catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it("restores to a moment between two batches: the first is there, the second is not, verify finds nothing missing", async () => {
    if (asRoot) {
      const id = async (flag: string) =>
        Number((await run("id", [flag, "postgres"])).stdout.trim());
      ids = { uid: await id("-u"), gid: await id("-g") };
    }
    for (const dir of ["repo", "log", "lock", "sock", "blobs"]) mkdirSync(join(base, dir));
    if (asRoot) {
      for (const dir of ["", "repo", "log", "lock", "sock", "blobs"])
        chownSync(join(base, dir), (ids as { uid: number }).uid, (ids as { gid: number }).gid);
    }
    chmodSync(base, 0o755);
    port = await freePort();
    writeFileSync(
      config,
      [
        "[global]",
        `repo1-path=${join(base, "repo")}`,
        `log-path=${join(base, "log")}`,
        `lock-path=${join(base, "lock")}`,
        "repo1-retention-full=1",
        "log-level-console=warn",
        "start-fast=y",
        "[sluice]",
        `pg1-path=${data}`,
        `pg1-port=${port}`,
        `pg1-socket-path=${socket}`,
        "",
      ].join("\n"),
    );
    chmodSync(config, 0o644);
    await as(join(PG_BIN, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
    appendFileSync(
      join(data, "postgresql.conf"),
      [
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${socket}'`,
        "wal_level = replica",
        "archive_mode = on",
        `archive_command = 'pgbackrest --config=${config} --stanza=sluice archive-push %p'`,
        "max_wal_senders = 3",
        "fsync = on",
        "",
      ].join("\n"),
    );
    await pgctl("start");
    running = true;
    await backrest("stanza-create");
    await backrest("--type=full", "backup");

    const databaseUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const blobs = join(base, "blobs");
    const sluice = await startTestSluice({
      redis: false,
      databaseUrl,
      env: { SLUICE_DATA_DIR: base },
    });
    const url = `${sluice.url}/api/${sluice.projectId}/envelope/?sentry_key=${sluice.publicKey}`;
    const send = async (message: string, count: number) => {
      const sent: string[] = [];
      for (let i = 0; i < count; i++) {
        const id = newId();
        const attachment = randomBytes(300);
        const body = Buffer.concat([
          Buffer.from(`{"event_id":"${id}"}\n{"type":"event"}\n{"message":"${message}"}\n`),
          Buffer.from(`{"type":"attachment","length":${attachment.length},"filename":"a.bin"}\n`),
          attachment,
          Buffer.from("\n"),
        ]);
        const r = await fetch(url, { method: "POST", body });
        expect(r.status).toBe(200);
        sent.push(id);
      }
      await waitFor(
        async () => (await countRows(sluice.sql, "events", "processed_at IS NULL")) === 0,
        20_000,
        "processed",
      );
      return sent;
    };
    const first = await send("pitr first batch", 20);
    const target = (
      await sluice.sql.query(
        `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
      )
    ).rows[0].t as string;
    await new Promise((r) => setTimeout(r, 1_100));
    const second = await send("pitr second batch", 20);
    // Archive the WAL holding the second batch, so recovery has WAL past the target.
    const wal = (await sluice.sql.query("SELECT pg_walfile_name(pg_switch_wal()) AS f")).rows[0].f;
    await waitFor(
      async () => {
        const r = await sluice.sql.query("SELECT last_archived_wal FROM pg_stat_archiver");
        return (r.rows[0].last_archived_wal ?? "") >= wal;
      },
      30_000,
      "the WAL archived",
    );
    await sluice.stop();

    // Disaster: restore the cluster to the moment between the batches.
    await pgctl("stop", "-m", "fast");
    running = false;
    await backrest(
      "--delta",
      "--type=time",
      `--target=${target}`,
      "--target-action=promote",
      "restore",
    );
    await pgctl("start");
    running = true;
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await waitFor(
        async () => (await client.query("SELECT pg_is_in_recovery() AS r")).rows[0].r === false,
        30_000,
        "recovery",
      );
      const present = new Set(
        (await client.query("SELECT replace(event_id::text, '-', '') AS id FROM events")).rows.map(
          (r) => r.id as string,
        ),
      );
      expect(first.filter((id) => !present.has(id))).toEqual([]);
      expect(second.filter((id) => present.has(id))).toEqual([]);
      const issues = await client.query("SELECT title, times_seen::int AS n FROM issues");
      expect(issues.rows).toEqual([{ title: "pitr first batch", n: 20 }]);
    } finally {
      await client.end();
    }
    // The blob store is newer than the database: every blob it needs is there.
    const bin = new URL("../bin/sluice.js", import.meta.url).pathname;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      SLUICE_DATA_DIR: base,
      LOG_LEVEL: "warn",
    };
    delete env.REDIS_URL;
    const verify = await run(process.execPath, [bin, "verify"], { env });
    expect(verify.stdout).toMatch(/checked 20 blob references: 0 missing or corrupt/);
    expect(existsSync(blobs)).toBe(true);
  }, 240_000);
});
