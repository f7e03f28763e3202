-- A project's own grouping rules, in Sentry's rule syntax (Sentry's project
-- options sentry:fingerprinting_rules and sentry:grouping_enhancements, set
-- as fingerprintingRules and groupingEnhancements on
-- PUT /api/0/projects/{org}/{project}/). A table of its own, so that the
-- projects rows every lookup reads stay narrow; '' means no rules.
CREATE TABLE IF NOT EXISTS project_grouping_rules (
  project_id bigint PRIMARY KEY REFERENCES projects (id),
  fingerprinting_rules text NOT NULL DEFAULT '',
  grouping_enhancements text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Merged issues stay as rows (Sentry's GroupRedirect): an API read of a
-- merged issue's id answers its parent, and lists leave merged issues out.
-- No foreign key: a merged row is never deleted, and the constraint would
-- need a validating scan of issues.
ALTER TABLE issues ADD COLUMN IF NOT EXISTS merged_into_id bigint;

-- The event's first group hash (Sentry's primary_hash), so that an issue's
-- hashes can be listed with their latest event and a hash unmerged with its
-- events. Null for events grouped before this column existed.
ALTER TABLE events ADD COLUMN IF NOT EXISTS primary_hash text;
