-- The replay ledger of ClickHouse's dead letters (the consumers without PostgreSQL set messages aside
-- in ClickHouse's consumer_dead_letters, migrations/clickhouse/0007). ClickHouse has no transactions
-- nor a conditional update, so two replays of one letter could not agree there which of them sends
-- (a ReplacingMergeTree mark is last-writer-wins at merge time: both would read "not replayed" and
-- both send). The claim and the mark live here instead, as for PostgreSQL's letters (0505): one row
-- per letter a replay claimed, keyed by the letter's id (`ch-` and 32 hex digits of the SHA-256 of
-- its consumer group, topic, partition and offset, database-service clickhouse-dead-letters.ts), with
-- the letter's coordinates for an operator reading the table.
CREATE TABLE IF NOT EXISTS ch_dead_letter_replays (
  letter_id         text PRIMARY KEY CHECK (letter_id ~ '^ch-[0-9a-f]{32}$'),
  consumer_group    text NOT NULL,
  topic             text NOT NULL,
  msg_partition     integer NOT NULL,
  msg_offset        bigint NOT NULL,
  replay_claim      uuid,
  replay_claimed_at timestamptz,
  replayed_at       timestamptz,
  replayed_offset   bigint,
  CONSTRAINT ch_dead_letter_replays_claimed CHECK ((replay_claim IS NULL) = (replay_claimed_at IS NULL)),
  CONSTRAINT ch_dead_letter_replays_done CHECK (replayed_at IS NULL OR replay_claim IS NULL)
);
