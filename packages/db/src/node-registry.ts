import type { Queryable } from "./database.ts";

/**
 * The `application_name` every release before the registry (0.1.0 to
 * 0.3.0) gives its connections. Nodes of later releases name theirs
 * `sluice/<release>`, so a connection named exactly this is a node (or a
 * command) of one of those releases, which never registers.
 */
export const UNREGISTERED_APPLICATION_NAME = "sluice";

/** The newest release that does not register: an unregistered node runs it or an older one. */
export const LAST_RELEASE_WITHOUT_REGISTRY = "0.3.0";

/** One row of `sluice_nodes` (migration 0011), as the fleet commands show it. */
export type FleetNode = {
  /** `host:pid:random` for a registered node; `unregistered:<client address>` for the others. */
  id: string;
  host: string;
  /** `0.4.0-dev`, `0.4.0`; `0.3.0 or older` for an unregistered node. */
  release: string;
  commit: string | null;
  roles: string[];
  /** The highest migration the node's code needs applied. */
  schemaVersion: number;
  registered: boolean;
  ready: boolean;
  startedAt: Date;
  heartbeatAt: Date;
};

/** What a node writes about itself at each heartbeat. */
export type NodeRecord = {
  id: string;
  host: string;
  release: string;
  commit: string | null;
  roles: string[];
  schemaVersion: number;
  ready: boolean;
  startedAt: Date;
};

/** True once migration 0011 created the registry (older schemas have none). */
export async function hasNodeRegistry(db: Queryable): Promise<boolean> {
  const result = await db.query("SELECT to_regclass('sluice_nodes') IS NOT NULL AS present");
  return result.rows[0]?.present === true;
}

/** Inserts or refreshes this node's row with `heartbeat_at = now()` (the database's clock). */
export async function upsertNode(db: Queryable, node: NodeRecord): Promise<void> {
  await db.query(
    `INSERT INTO sluice_nodes
       (id, host, release, commit, roles, schema_version, registered, ready, started_at, heartbeat_at)
     VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, now())
     ON CONFLICT (id) DO UPDATE
       SET ready = excluded.ready, heartbeat_at = now(), release = excluded.release,
           commit = excluded.commit, roles = excluded.roles,
           schema_version = excluded.schema_version`,
    [
      node.id,
      node.host,
      node.release,
      node.commit,
      node.roles,
      node.schemaVersion,
      node.ready,
      node.startedAt,
    ],
  );
}

/** Deletes a node's row (it drains). */
export async function removeNode(db: Queryable, id: string): Promise<void> {
  await db.query("DELETE FROM sluice_nodes WHERE id = $1", [id]);
}

/**
 * Live connections of this database opened by releases without the
 * registry, grouped by client host (`local` for a Unix socket), with the
 * number of connections. Other databases of the cluster are not looked at.
 */
export async function unregisteredConnections(
  db: Queryable,
): Promise<{ host: string; connections: number }[]> {
  const result = await db.query(
    `SELECT coalesce(host(client_addr), 'local') AS host, count(*)::int AS connections
       FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()
      GROUP BY 1 ORDER BY 1`,
    [UNREGISTERED_APPLICATION_NAME],
  );
  return result.rows as { host: string; connections: number }[];
}

/**
 * Writes one `registered = false` row per client host that has connections
 * of an unregistered release now, so that such a node counts as live for
 * `unregisteredAgeOutMs` after it was last seen, even while its pool has
 * closed its idle connections.
 */
export async function recordUnregisteredNodes(db: Queryable): Promise<number> {
  const seen = await unregisteredConnections(db);
  for (const { host } of seen) {
    await db.query(
      `INSERT INTO sluice_nodes (id, host, release, schema_version, registered, ready)
       VALUES ($1, $2, $3, 0, false, true)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
      [`unregistered:${host}`, host, `${LAST_RELEASE_WITHOUT_REGISTRY} or older`],
    );
  }
  return seen.length;
}

/**
 * Deletes rows of dead nodes: registered ones whose heartbeat is older than
 * `ageOutMs`, unregistered sightings older than `unregisteredAgeOutMs`.
 * Returns how many went.
 */
export async function pruneNodes(
  db: Queryable,
  ageOutMs: number,
  unregisteredAgeOutMs: number,
): Promise<number> {
  const result = await db.query(
    `DELETE FROM sluice_nodes
      WHERE heartbeat_at < now() - make_interval(secs => (CASE WHEN registered THEN $1::float8 ELSE $2::float8 END) / 1000.0)`,
    [ageOutMs, unregisteredAgeOutMs],
  );
  return result.rowCount ?? 0;
}

/**
 * The live fleet: registered nodes whose heartbeat is within `ageOutMs`,
 * unregistered sightings within `unregisteredAgeOutMs`, and, whatever the
 * table says, a row for each host with unregistered connections right now.
 * Ordered by release, then id. An empty list on a schema without the registry
 * except for those connections.
 */
export async function listLiveNodes(
  db: Queryable,
  ageOutMs: number,
  unregisteredAgeOutMs: number,
): Promise<FleetNode[]> {
  const nodes: FleetNode[] = [];
  if (await hasNodeRegistry(db)) {
    const result = await db.query(
      `SELECT id, host, release, commit, roles, schema_version::int AS "schemaVersion", registered,
              ready, started_at AS "startedAt", heartbeat_at AS "heartbeatAt"
         FROM sluice_nodes
        WHERE heartbeat_at >= now() - make_interval(secs => (CASE WHEN registered THEN $1::float8 ELSE $2::float8 END) / 1000.0)
        ORDER BY registered, release, id`,
      [ageOutMs, unregisteredAgeOutMs],
    );
    nodes.push(...(result.rows as FleetNode[]));
  }
  const now = new Date();
  for (const { host } of await unregisteredConnections(db)) {
    const id = `unregistered:${host}`;
    const known = nodes.find((n) => n.id === id);
    if (known) known.heartbeatAt = now;
    else
      nodes.unshift({
        id,
        host,
        release: `${LAST_RELEASE_WITHOUT_REGISTRY} or older`,
        commit: null,
        roles: [],
        schemaVersion: 0,
        registered: false,
        ready: true,
        startedAt: now,
        heartbeatAt: now,
      });
  }
  return nodes;
}

/**
 * The oldest release the schema still supports: the highest
 * `oldest_release` of `sluice_schema_floor`, with the migration and reason
 * that set it; null when nothing was gated (or the schema has no registry).
 */
export async function readSchemaFloor(
  db: Queryable,
  compare: (a: string, b: string) => number,
): Promise<{ oldestRelease: string; migration: number; reason: string } | null> {
  const present = await db.query("SELECT to_regclass('sluice_schema_floor') IS NOT NULL AS p");
  if (present.rows[0]?.p !== true) return null;
  const result = await db.query(
    `SELECT migration::int AS migration, oldest_release AS "oldestRelease", reason FROM sluice_schema_floor`,
  );
  const rows = result.rows as { oldestRelease: string; migration: number; reason: string }[];
  return rows.reduce<(typeof rows)[number] | null>(
    (best, row) =>
      best === null || compare(row.oldestRelease, best.oldestRelease) > 0 ? row : best,
    null,
  );
}

/** The database's schema version: the highest migration applied (0 on an empty database). */
export async function appliedSchemaVersion(db: Queryable): Promise<number> {
  const present = await db.query("SELECT to_regclass('sluice_migrations') IS NOT NULL AS p");
  if (present.rows[0]?.p !== true) return 0;
  const result = await db.query(
    "SELECT coalesce(max(version), 0)::int AS version FROM sluice_migrations",
  );
  return result.rows[0]?.version ?? 0;
}
