-- The node registry (docs/architecture.md §3.14): every `sluice serve`
-- process writes its row every few seconds (SLUICE_NODE_HEARTBEAT_MS) and
-- deletes it when it drains; a row whose heartbeat is older than
-- SLUICE_NODE_AGE_OUT_MS is a dead node. `registered` is false for the rows
-- nodes write about connections of releases without the registry (0.3.0
-- and older: application_name `sluice`), one row per client host; their
-- release is unknown. The version gate, `sluice fleet` and
-- `sluice upgrade check|verify` read it. A few rows; never on the ingest path.
CREATE TABLE IF NOT EXISTS sluice_nodes (
  id text PRIMARY KEY,
  host text NOT NULL,
  release text NOT NULL,
  commit text,
  roles text[] NOT NULL DEFAULT '{}',
  schema_version bigint NOT NULL,
  registered boolean NOT NULL DEFAULT true,
  ready boolean NOT NULL DEFAULT false,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- The oldest release the schema still supports: one row per gated
-- migration (one that drops or narrows something), written before it is
-- applied, naming the release from which the code no longer reads what it
-- removes. A node of an older release refuses to start.
CREATE TABLE IF NOT EXISTS sluice_schema_floor (
  migration bigint PRIMARY KEY,
  oldest_release text NOT NULL,
  reason text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
