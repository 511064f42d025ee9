-- The replay ledger of ClickHouse's dead letters (0506) per letter set aside, not per message: a row
-- was keyed by the letter's id alone, which names the message (its consumer group, topic, partition
-- and offset). A message whose letter retention deleted can be set aside again (its group's offsets
-- reset, it is read again and fails again): a new letter under the same id, which read as replayed
-- while the earlier letter's row was kept and as not replayed once retention pruned that row. A row
-- now names the letter it claimed by the letter's created_at too (ClickHouse's, to the second, UTC):
-- the letter set aside again is not replayed until a replay of its own, recorded in a row of its own.
--
-- Rows written before have no created_at (NULL: ClickHouse is not PostgreSQL's to read here). Such
-- a row stays the letter's that was set aside before its claim (database-service
-- clickhouse-dead-letters.ts: created_at no later than the row's replay, or claim, and an hour for
-- the two clocks), and a replay's claim of that letter gives the row its created_at.
ALTER TABLE ch_dead_letter_replays ADD COLUMN IF NOT EXISTS letter_created_at timestamptz;
ALTER TABLE ch_dead_letter_replays DROP CONSTRAINT IF EXISTS ch_dead_letter_replays_pkey;
CREATE UNIQUE INDEX IF NOT EXISTS ch_dead_letter_replays_letter ON ch_dead_letter_replays (letter_id, letter_created_at);
