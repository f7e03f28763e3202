import type { Queryable } from "../database.ts";

/**
 * Takes or renews the named lease for `ttlMs`; true when `holder` has it.
 * One node at a time runs what a lease guards (sweeper, maintenance).
 */
export async function tryTakeLease(
  db: Queryable,
  name: string,
  holder: string,
  ttlMs: number,
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO leases (name, holder, expires_at)
     VALUES ($1, $2, now() + make_interval(secs => $3 / 1000.0))
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.expires_at < now() OR leases.holder = excluded.holder
     RETURNING holder`,
    [name, holder, ttlMs],
  );
  return result.rowCount === 1;
}

/** Prefix of the holder of a lease whose holder has finished its work but keeps it until its next turn. */
const IDLE = "idle:";

/**
 * Takes the named lease for `ttlMs` when it is free, expired, already ours,
 * or held by a holder that has finished and only keeps it until its next
 * turn (`finishLease`): so a command run by hand (`sluice retention run`)
 * waits for a node's running maintenance, never for its idle hour. True
 * when `holder` has it.
 */
export async function takeLeaseUnlessRunning(
  db: Queryable,
  name: string,
  holder: string,
  ttlMs: number,
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO leases (name, holder, expires_at)
     VALUES ($1, $2, now() + make_interval(secs => $3 / 1000.0))
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.expires_at < now() OR leases.holder = excluded.holder
          OR leases.holder LIKE '${IDLE}%'
     RETURNING holder`,
    [name, holder, ttlMs],
  );
  return result.rowCount === 1;
}

/**
 * Marks our lease as finished, kept for `idleMs` more: nodes' periodic
 * ticks (`tryTakeLease`) leave it alone until then, while
 * `takeLeaseUnlessRunning` may take it at once. Does nothing when we no
 * longer hold it.
 */
export async function finishLease(
  db: Queryable,
  name: string,
  holder: string,
  idleMs: number,
): Promise<void> {
  await db.query(
    `UPDATE leases SET holder = '${IDLE}' || holder,
            expires_at = now() + make_interval(secs => $3 / 1000.0)
      WHERE name = $1 AND holder = $2`,
    [name, holder, idleMs],
  );
}

/** Gives the named lease up, if `holder` has it. */
export async function releaseLease(db: Queryable, name: string, holder: string): Promise<void> {
  await db.query("DELETE FROM leases WHERE name = $1 AND holder = $2", [name, holder]);
}

/** Who holds the named lease and until when; null when nobody does (or it expired). */
export async function readLease(
  db: Queryable,
  name: string,
): Promise<{ holder: string; expiresAt: Date; running: boolean } | null> {
  const result = await db.query(
    "SELECT holder, expires_at FROM leases WHERE name = $1 AND expires_at > now()",
    [name],
  );
  const row = result.rows[0];
  if (!row) return null;
  return {
    holder: row.holder,
    expiresAt: row.expires_at,
    running: !(row.holder as string).startsWith(IDLE),
  };
}
