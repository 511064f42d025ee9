-- compliance-monitor: retention of cm_position_fills (found in session 39: one row per fill, kept
-- forever). A row's only use is to make a fill that comes back under another event id move the
-- position no second time (cm_positions is a running total the trigger of 0199 adds to, never a sum
-- over these rows, so deleting a row leaves every position as it is). The service deletes rows
-- applied longer ago than COMPLIANCE_POSITION_FILL_RETENTION_DAYS, whose floor is the longest a fill
-- can come back (trading.executions' retention, its segments' roll, the replay window, a margin), in
-- batches of the oldest: this index serves that order and bound.
CREATE INDEX IF NOT EXISTS cm_position_fills_applied ON cm_position_fills (applied_at);
