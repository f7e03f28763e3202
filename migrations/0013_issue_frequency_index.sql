-- sluice:no-transaction
-- The issue list sorted by events (Sentry's `sort=freq`) of one project reads one
-- page of this index instead of sorting all of the project's issues (about 75 ms
-- at 100,000 issues: bench/RESULTS.md, the API at 10 million events). Built
-- CONCURRENTLY, so that it never blocks the worker's issue updates.
CREATE INDEX CONCURRENTLY IF NOT EXISTS issues_project_times_seen ON issues (project_id, times_seen);
