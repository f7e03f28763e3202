-- Until when the worker also computes a project's hashes under the previous
-- grouping config (`legacy`), only to find the issues grouped under it
-- (Sentry's project option sentry:secondary_grouping_expiry, set when a
-- project's grouping config is upgraded, to the upgrade plus
-- SENTRY_GROUPING_UPDATE_MIGRATION_PHASE, 7 days: src/sentry/conf/server.py
-- and src/sentry/grouping/ingest/config.py). Null: no transition, the case of
-- every project created under the current config.
--
-- Projects that exist now may hold issues grouped under `legacy` (Sluice
-- 0.1.0), so they get 7 days from this migration: `now()` is evaluated once,
-- here, and stored without rewriting the table. Dropping the default then
-- leaves the projects created from here on, by any release, without one.
ALTER TABLE projects ADD COLUMN IF NOT EXISTS secondary_grouping_expiry timestamptz
  DEFAULT (now() + interval '7 days');
ALTER TABLE projects ALTER COLUMN secondary_grouping_expiry DROP DEFAULT;
