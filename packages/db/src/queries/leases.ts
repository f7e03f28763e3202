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
