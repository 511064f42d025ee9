-- trading-engine, live mode: te_live_sends.sent_at becomes the timestamp of the LAST placement
-- request signed for the order (written in autocommit right before each POST /api/v3/order, the
-- request signed with that very timestamp), NULL while none was sent. It held the time the record
-- was first inserted, before any send, and never moved. Binance applies a signed request up to
-- `recvWindow` after its timestamp, so a placement an attempt that never committed sent may land
-- after a later lookup answered -2013 ("order does not exist"): the engine trusts that answer only
-- once recvWindow plus a clock margin has passed since sent_at (services/trading-engine/live.ts).
-- Rows written before this migration keep their insert time, earlier than any send they made: for
-- those the wait may end too soon, as it did not exist before.

ALTER TABLE te_live_sends ALTER COLUMN sent_at DROP NOT NULL, ALTER COLUMN sent_at DROP DEFAULT;
