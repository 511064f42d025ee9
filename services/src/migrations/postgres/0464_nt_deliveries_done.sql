-- notification-service: the deliveries the retention pass may delete (sent or dead, never pending), by id
-- (data.ts deleteOldDeliveries). A pass takes the oldest of them: it took the oldest rows of the whole
-- table, and once a batch's worth of kept rows (dead ones, kept for ever then, or pending ones) lay at its
-- bottom, no pass looked beyond them again.
CREATE INDEX IF NOT EXISTS nt_deliveries_done ON nt_deliveries (delivery_id) WHERE status <> 'pending';
