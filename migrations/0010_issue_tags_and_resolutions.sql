-- Issue search by tag and environment, and "resolve in next release"
-- (docs/architecture.md §3.14).

-- Every tag value an issue's events carried (the event's own tags and the
-- ones Sluice derives: environment, release, level, user, browser.name...),
-- with how often and when: Sentry's GroupTagValue. The worker counts each
-- batch in when it groups it; the issue list searches `key:value` and
-- `has:key` through it and the issue page summarizes it, so neither reads
-- events. Keys and values are at most 200 characters (Relay's bound);
-- events grouped before this table existed have no rows here.
-- No foreign key to issues: retention deletes an issue's rows with it, and
-- the constraint would add a lookup to every batch.
CREATE TABLE IF NOT EXISTS issue_tag_values (
  issue_id bigint NOT NULL,
  project_id bigint NOT NULL,
  key text NOT NULL,
  value text NOT NULL,
  times_seen bigint NOT NULL DEFAULT 0,
  first_seen timestamptz NOT NULL,
  last_seen timestamptz NOT NULL,
  PRIMARY KEY (issue_id, key, value)
);
-- `key:value` across a project's issues, without reading its other tags.
CREATE INDEX IF NOT EXISTS issue_tag_values_lookup ON issue_tag_values (project_id, key, value, issue_id);

-- Sentry's GroupResolution for a resolved issue: 'in_next_release' (resolved
-- in the release after `resolution_release`, the project's latest release
-- when it was resolved) or 'in_release' (resolved in `resolution_release`);
-- null for a plain resolve. Decides whether a later event is a regression.
ALTER TABLE issues ADD COLUMN IF NOT EXISTS resolution_type text;
ALTER TABLE issues ADD COLUMN IF NOT EXISTS resolution_release text;
