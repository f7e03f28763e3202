import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  dumpDatabase,
  ensureEventPartitions,
  loadDatabase,
  nonEmptyTables,
  readMigrationFiles,
  readMigrationState,
  releaseLease,
  type TableDump,
  tryTakeLease,
} from "@sluice/db";
import { BACKUP_LEASE } from "../retention/run-retention.ts";
import type { Services } from "../services.ts";

/** The backup lease's length, renewed every third of it while the backup runs (ms). */
const BACKUP_LEASE_MS = 60_000;
const MANIFEST = "manifest.json";
const BLOB_LIST = "blobs.tsv";
const FORMAT = "sluice-backup/1";
const DAY_MS = 86_400_000;

/** What `manifest.json` of a backup holds (docs/operations.md §8.8). */
export type BackupManifest = {
  format: typeof FORMAT;
  /** When the database snapshot was taken (the database's clock); the backup's point in time. */
  snapshotAt: string;
  /** When the last blob was copied. */
  finishedAt: string;
  /** Latest release of releases.json this code carries, or "unknown" (a bundle without it). */
  release: string;
  /** The highest migration applied at the snapshot, and every one with its checksum. */
  schemaVersion: number;
  migrations: { version: number; name: string; checksum: string }[];
  postgres: { serverVersion: string; method: "copy" };
  tables: TableDump[];
  partitions: string[];
  blobs: { count: number; bytes: number; list: string; listSha256: string; missing: string[] };
  counts: Record<string, number>;
};

/** A problem the operator must fix before a restore can go on (exit 1 with its message). */
export class RestoreRefused extends Error {}

function releaseOfThisCode(): string {
  const path = new URL("../../../../releases.json", import.meta.url);
  if (!existsSync(path)) return "unknown";
  const releases = JSON.parse(readFileSync(path, "utf8")).releases as { version: string }[];
  return releases.at(-1)?.version ?? "unknown";
}

/**
 * `sluice backup create <dir>`: a database snapshot (every data table, by
 * COPY in one REPEATABLE READ transaction), then a copy of every blob that
 * snapshot refers to, each checked against its SHA-1, then `manifest.json`
 * (written last: a directory without it is an unfinished backup).
 *
 * Why the pair is consistent: a blob is written before any row refers to
 * it and never changes (its key is its SHA-1), so every blob the snapshot
 * names existed when the snapshot was taken and still has the same bytes
 * when it is copied later. What could remove one in between is retention's
 * blob deletion, and it deletes nothing while the `backup` lease, held here
 * from before the snapshot to the last blob, is taken. Blobs written after
 * the snapshot are simply not copied.
 *
 * Works while nodes serve. `dir` must be empty or absent. Returns the
 * manifest; blobs that were missing from the store are listed in it
 * (`blobs.missing`) and the caller exits 1.
 */
export async function createBackup(
  services: Pick<Services, "db" | "blobs" | "instanceId">,
  dir: string,
  print: (line: string) => void,
): Promise<BackupManifest> {
  const { db, blobs } = services;
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new RestoreRefused(`${dir} is not empty`);
  const holder = `backup:${services.instanceId}`;
  if (!(await tryTakeLease(db.pool, BACKUP_LEASE, holder, BACKUP_LEASE_MS)))
    throw new RestoreRefused("another backup is running (the backup lease is held)");
  const heartbeat = setInterval(
    () => void tryTakeLease(db.pool, BACKUP_LEASE, holder, BACKUP_LEASE_MS).catch(() => {}),
    BACKUP_LEASE_MS / 3,
  );
  try {
    await mkdir(join(dir, "db"));
    const snapshot = await dumpDatabase(db.pool, join(dir, "db"), (t) =>
      print(`table ${t.table}: ${t.rows} rows, ${t.bytes} bytes`),
    );
    print(
      `database snapshot at ${snapshot.takenAt.toISOString()}; copying ${snapshot.blobs.length} blobs`,
    );
    const lines: string[] = [];
    const missing: string[] = [];
    let bytes = 0;
    for (const [i, ref] of snapshot.blobs.entries()) {
      const data = await blobs.get(ref.blobKey);
      if (!data || createHash("sha1").update(data).digest("hex") !== ref.sha1) {
        missing.push(ref.blobKey);
        continue;
      }
      const path = join(dir, "blobs", ref.blobKey);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, data);
      bytes += data.length;
      lines.push(`${ref.blobKey}\t${ref.sha1}\t${data.length}\n`);
      if ((i + 1) % 1000 === 0) print(`blobs: ${i + 1}/${snapshot.blobs.length}`);
    }
    const list = lines.join("");
    await writeFile(join(dir, BLOB_LIST), list);
    const manifest: BackupManifest = {
      format: FORMAT,
      snapshotAt: snapshot.takenAt.toISOString(),
      finishedAt: new Date().toISOString(),
      release: releaseOfThisCode(),
      schemaVersion: Math.max(0, ...snapshot.migrations.map((m) => m.version)),
      migrations: snapshot.migrations,
      postgres: { serverVersion: snapshot.serverVersion, method: "copy" },
      tables: snapshot.tables.map((t) => ({ ...t, file: `db/${t.file}` })),
      partitions: snapshot.partitions,
      blobs: {
        count: lines.length,
        bytes,
        list: BLOB_LIST,
        listSha256: createHash("sha256").update(list).digest("hex"),
        missing,
      },
      counts: Object.fromEntries(snapshot.tables.map((t) => [t.table, t.rows])),
    };
    await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    clearInterval(heartbeat);
    await releaseLease(db.pool, BACKUP_LEASE, holder).catch(() => {});
  }
}

/**
 * `sluice backup restore <dir>`: into an empty database (migrated by this
 * release, no rows) and an empty blob store; refuses anything else with
 * `RestoreRefused`, as it does a backup of a schema this release does not
 * know, or an unfinished or corrupt backup. Applies this release's
 * migrations first (already done by the command's start), creates the
 * backup's event partitions, loads every table in one transaction, then
 * puts every blob back (checked against its SHA-1). Run `sluice verify`
 * after it. Returns the manifest.
 */
export async function restoreBackup(
  services: Pick<Services, "db" | "blobs">,
  dir: string,
  print: (line: string) => void,
): Promise<BackupManifest> {
  const { db, blobs } = services;
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(manifestPath))
    throw new RestoreRefused(`${dir} has no ${MANIFEST}: not a backup, or an unfinished one`);
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as BackupManifest;
  if (manifest.format !== FORMAT)
    throw new RestoreRefused(`unknown backup format ${manifest.format}`);
  const known = new Map(readMigrationFiles().map((f) => [f.version, f]));
  for (const m of manifest.migrations) {
    const file = known.get(m.version);
    if (!file || file.checksum !== m.checksum)
      throw new RestoreRefused(
        `the backup's schema has migration ${m.name}, which this release does not have (or has edited): restore with the release that took it (${manifest.release}) or a newer one`,
      );
  }
  const state = await readMigrationState(db.pool);
  if (state.pending.length > 0)
    throw new RestoreRefused("the database's schema is not up to date: run sluice migrate apply");
  const full = await nonEmptyTables(db.pool);
  if (full.length > 0)
    throw new RestoreRefused(
      `the database is not empty (rows in ${full.join(", ")}): restore only into an empty database`,
    );
  if (!(await blobs.isEmpty()))
    throw new RestoreRefused("the blob store is not empty: restore only into an empty blob store");
  const list = await readFile(join(dir, manifest.blobs.list), "utf8");
  if (createHash("sha256").update(list).digest("hex") !== manifest.blobs.listSha256)
    throw new RestoreRefused(
      `${manifest.blobs.list} is corrupt (SHA-256 differs from the manifest)`,
    );

  const oldest = manifest.partitions[0];
  if (oldest) {
    const d = oldest.slice("events_p".length);
    const day = Date.parse(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00Z`);
    const now = new Date();
    const behind = Math.max(0, Math.ceil((now.getTime() - day) / DAY_MS));
    await ensureEventPartitions(db.pool, now, behind, 3);
  }
  await loadDatabase(db.pool, dir, manifest.tables, (t) =>
    print(`table ${t.table}: ${t.rows} rows`),
  );
  let restored = 0;
  for (const line of list.split("\n")) {
    if (!line) continue;
    const [key = "", sha1 = ""] = line.split("\t");
    const data = await readFile(join(dir, "blobs", key));
    if (createHash("sha1").update(data).digest("hex") !== sha1)
      throw new RestoreRefused(`backup blob ${key} is corrupt (SHA-1 differs)`);
    const put = await blobs.put(key.split("/").slice(0, -2).join("/"), data);
    if (put.key !== key) throw new Error(`blob ${key} was stored as ${put.key}`);
    restored += 1;
    if (restored % 1000 === 0) print(`blobs: ${restored}/${manifest.blobs.count}`);
  }
  print(
    `restored ${manifest.tables.length} tables and ${restored} blobs from the snapshot of ${manifest.snapshotAt}`,
  );
  return manifest;
}
