-- Events may keep their payload compressed (packages/db/src/event-payload.ts:
-- a format byte, then deflate primed with a frozen dictionary), about a
-- third of the bytes of jsonb. Such a row has `payload_compressed` set and
-- `payload` = JSON null (the column stays NOT NULL: release 0.1.0 relies on
-- it). Releases before this one read only `payload`, so nodes write the
-- compressed column only when SLUICE_PAYLOAD_STORAGE=compressed, which is
-- set once none of them runs (README "Upgrading").
ALTER TABLE events ADD COLUMN IF NOT EXISTS payload_compressed bytea;
