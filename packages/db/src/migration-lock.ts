import type { Queryable } from "./database.ts";

/**
 * The migration lock: one row of `sluice_migration_lock` held with a lease
 * that its holder renews. A row, not a session advisory lock, so that it
 * works behind PgBouncer in transaction mode and operators can see it; a
 * holder that dies stops renewing and the lease expires.
 */
export async function tryTakeMigrationLock(
  db: Queryable,
  holder: string,
  leaseMs: number,
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO sluice_migration_lock (id, holder, taken_at, heartbeat_at, expires_at)
     VALUES (1, $1, now(), now(), now() + make_interval(secs => $2 / 1000.0))
     ON CONFLICT (id) DO UPDATE
       SET holder = excluded.holder, taken_at = now(), heartbeat_at = now(),
           expires_at = excluded.expires_at
       WHERE sluice_migration_lock.expires_at < now()
          OR sluice_migration_lock.holder = excluded.holder
     RETURNING holder`,
    [holder, leaseMs],
  );
  return result.rowCount === 1;
}

/** Renews the lease; false when it was lost (expired and taken by another node). */
export async function renewMigrationLock(
  db: Queryable,
  holder: string,
  leaseMs: number,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE sluice_migration_lock
        SET heartbeat_at = now(), expires_at = now() + make_interval(secs => $2 / 1000.0)
      WHERE id = 1 AND holder = $1 AND expires_at > now()`,
    [holder, leaseMs],
  );
  return result.rowCount === 1;
}

export async function releaseMigrationLock(db: Queryable, holder: string): Promise<void> {
  await db.query("DELETE FROM sluice_migration_lock WHERE id = 1 AND holder = $1", [holder]);
}

export type MigrationLockHolder = {
  holder: string;
  takenAt: Date;
  heartbeatAt: Date;
  expiresAt: Date;
};

export async function readMigrationLock(db: Queryable): Promise<MigrationLockHolder | null> {
  const result = await db.query(
    `SELECT holder, taken_at AS "takenAt", heartbeat_at AS "heartbeatAt", expires_at AS "expiresAt"
       FROM sluice_migration_lock WHERE id = 1`,
  );
  return (result.rows[0] as MigrationLockHolder | undefined) ?? null;
}
