-- consumer_dead_letters (0007) keyed by its letters' ids: database-service's GET and replay of one
-- ClickHouse dead letter (`ch-` and the first 32 hex digits of the SHA-256 of its consumer group and
-- topic, each length-prefixed, partition and offset: database-service clickhouse-dead-letters.ts)
-- computed every row's id to find one, reading the whole table (0007 is ordered by group, topic,
-- partition and offset, which an id does not give). Here an id is a granule of each part, and its
-- group, topic, partition and offset are then a granule of consumer_dead_letters by its key.
--
-- Not a skip index on consumer_dead_letters: Debian's 18.16 has no data-skipping indexes at all
-- (`INDEX ... TYPE ... GRANULARITY` is refused as a syntax error; they came experimental in 19.x,
-- bloom_filter later still), and a minmax or set index over a hash would select nearly every granule
-- anyway. Nor a MATERIALIZED id column in the ORDER BY: a sorting key can only be appended to (with a
-- column added in the same ALTER), after the group, so a lookup by id alone still could not use it.
--
-- Fed by a materialized view of every insert into consumer_dead_letters, whoever writes it (this
-- release's consumers and, during a rolling deploy, the release before's); the letters written before
-- are carried over below (one written between the view's creation and this is in both: a repeat the
-- merge folds, and a read takes one). The id's expression is the one the service computes.
CREATE TABLE IF NOT EXISTS consumer_dead_letter_ids (
  letter_id      String,
  consumer_group String,
  topic          String,
  msg_partition  Int32,
  msg_offset     Int64
) ENGINE = ReplacingMergeTree
ORDER BY letter_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS consumer_dead_letter_ids_feed TO consumer_dead_letter_ids AS
  SELECT concat('ch-', substring(lower(hex(SHA256(concat(toString(length(consumer_group)), ':', consumer_group, toString(length(topic)), ':', topic, toString(msg_partition), ':', toString(msg_offset))))), 1, 32)) AS letter_id,
         consumer_group, topic, msg_partition, msg_offset
  FROM consumer_dead_letters;

INSERT INTO consumer_dead_letter_ids (letter_id, consumer_group, topic, msg_partition, msg_offset)
  SELECT concat('ch-', substring(lower(hex(SHA256(concat(toString(length(consumer_group)), ':', consumer_group, toString(length(topic)), ':', topic, toString(msg_partition), ':', toString(msg_offset))))), 1, 32)) AS letter_id,
         consumer_group, topic, msg_partition, msg_offset
  FROM consumer_dead_letters;
