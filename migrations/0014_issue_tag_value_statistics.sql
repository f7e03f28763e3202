-- Tag search (`environment:production`, issue_tag_values) estimated each (key,
-- value) pair as if key and value were independent: a value most issues have
-- looked rare, so the planner fetched every matching issue and sorted them
-- (213 ms at 100,000 issues) instead of walking the issue list in order and
-- stopping after a page (8 ms; bench/RESULTS.md, the API at 10 million events).
-- The pairs' own frequencies (most common values) fix the estimate; ANALYZE,
-- which autovacuum runs, fills them in.
CREATE STATISTICS IF NOT EXISTS issue_tag_values_key_value (mcv, dependencies)
  ON key, value FROM issue_tag_values;
