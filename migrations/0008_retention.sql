-- sluice:no-transaction
-- Retention (docs/operations.md, section 9). Statements run one by one, so that the
-- indexes on existing tables are built CONCURRENTLY, without blocking ingest.

-- The event retention of a project in days, shorter than that of the instance
-- (SLUICE_RETENTION_DAYS; null: that of the instance). Older releases never read it.
ALTER TABLE projects ADD COLUMN IF NOT EXISTS retention_days bigint;

-- Blobs whose last reference retention deleted, waiting to be deleted from
-- the blob store. Rows go in, in the transaction that deletes the reference,
-- so a crash never forgets a blob; the blob goes only after a grace period
-- and never while a backup runs (the `backup` lease).
CREATE TABLE IF NOT EXISTS blob_deletions (
  blob_key text PRIMARY KEY,
  queued_at timestamptz NOT NULL DEFAULT now()
);

-- Is a blob still referenced? Asked for every blob retention would delete.
CREATE INDEX CONCURRENTLY IF NOT EXISTS attachments_blob_key ON attachments (blob_key);
CREATE INDEX CONCURRENTLY IF NOT EXISTS artifacts_blob_key ON artifacts (blob_key);
CREATE INDEX CONCURRENTLY IF NOT EXISTS upload_chunks_blob_key ON upload_chunks (blob_key);
-- The attachments of a project older than its retention.
CREATE INDEX CONCURRENTLY IF NOT EXISTS attachments_project_created ON attachments (project_id, created_at);
-- Issues whose last event is older than the retention.
CREATE INDEX CONCURRENTLY IF NOT EXISTS issues_project_last_seen ON issues (project_id, last_seen);
