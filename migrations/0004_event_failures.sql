-- Processing failures of events (the worker's poison events). Kept apart
-- from `events` (hot, partitioned by day) so that a failure is one small
-- row keyed like `event_ids`. `failed_at` is set once the worker gave up
-- (SLUICE_MAX_EVENT_FAILURES failures, or at once when the payload cannot be
-- decoded or normalized); the sweeper skips such events. `last_error` is the
-- error's type and message, bounded and with quoted values masked.
CREATE TABLE IF NOT EXISTS event_failures (
  project_id bigint NOT NULL,
  event_id uuid NOT NULL,
  received_at timestamptz NOT NULL,
  failures bigint NOT NULL DEFAULT 0,
  last_error text NOT NULL DEFAULT '',
  last_failed_at timestamptz NOT NULL DEFAULT now(),
  failed_at timestamptz,
  PRIMARY KEY (project_id, event_id)
);
CREATE INDEX IF NOT EXISTS event_failures_failed_at ON event_failures (failed_at)
  WHERE failed_at IS NOT NULL;
