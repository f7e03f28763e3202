import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One numbered SQL file of `migrations/`. */
export type MigrationFile = {
  version: number;
  /** File name, e.g. `0001_init.sql`. */
  name: string;
  sql: string;
  /** sha256 of the file's bytes, hex. */
  checksum: string;
  /**
   * Marked `-- sluice:no-transaction` on its first line: run statement by
   * statement outside a transaction, as `CREATE INDEX CONCURRENTLY` needs.
   */
  noTransaction: boolean;
};

/** The first-line marker of a file that must run outside a transaction. */
export const NO_TRANSACTION_MARKER = "-- sluice:no-transaction";

/**
 * The repository's `migrations/` directory: the nearest `migrations/` with
 * `0001_init.sql` above this module, so that the source (packages/db/src)
 * and the bundle (apps/server/dist) both find it. Throws at start when the
 * checkout or image has none.
 */
export const migrationsDir = findMigrationsDir(fileURLToPath(new URL(".", import.meta.url)));

function findMigrationsDir(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "migrations");
    if (existsSync(join(candidate, "0001_init.sql"))) return `${candidate}/`;
    if (dirname(dir) === dir) throw new Error(`no migrations/ directory above ${from}`);
  }
}

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/**
 * Reads `NNNN_name.sql` files in version order. Throws on a malformed name or
 * two files with one number, so a bad checkout fails at start, not halfway.
 */
export function readMigrationFiles(dir: string = migrationsDir): MigrationFile[] {
  const files: MigrationFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith(".sql")) continue;
    const match = FILE_NAME.exec(name);
    if (!match) throw new Error(`migration file name ${name} is not NNNN_lowercase_name.sql`);
    const bytes = readFileSync(join(dir, name));
    const version = Number(match[1]);
    if (files.some((f) => f.version === version)) {
      throw new Error(`two migration files are numbered ${match[1]}`);
    }
    const sql = bytes.toString("utf8");
    files.push({
      version,
      name,
      sql,
      checksum: createHash("sha256").update(bytes).digest("hex"),
      noTransaction: sql.trimStart().startsWith(NO_TRANSACTION_MARKER),
    });
  }
  return files;
}
