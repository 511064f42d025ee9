-- trading-engine, live mode: te_live_sends.refused_at / refusal record that Binance refused for good
-- (a 4xx that is no throttle nor a clock refusal: the symbol, the key's permissions) to answer the
-- live poll about the order as its record then stood (leftSent.ts). The poll does not ask again about
-- a refused record, also after a restart (the refusal was remembered in memory only, so every
-- restart or failed batch asked Binance again and logged the same refusal). A new placement
-- (recordPlacement) or a new mark (markUnrecorded) changes the record and clears the refusal: the
-- poll then asks about the record as it is now. A person who has settled the cause (the key's
-- permissions, say) clears refused_at to have the poll ask again, or deletes the record once the
-- order is reconciled by hand.

ALTER TABLE te_live_sends ADD COLUMN IF NOT EXISTS refused_at timestamptz, ADD COLUMN IF NOT EXISTS refusal text;
