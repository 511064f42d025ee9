-- payment-service: the deleted-customers pass (deleted-customers.ts) joined every tombstone ever written
-- (deleted_users) with pay_customers on each reconciliation pass, so its cost grew with the history of
-- deletions. It is incremental now, by a processed marker on the tombstone:
-- `deleted_users.pay_customers_checked_at`: when payment-service looked the deleted account's processor
-- customer up (NULL: not yet). A pass takes the unchecked tombstones only (the partial index below holds
-- nothing else), marks the account's customer due for deletion at the processor and the tombstone
-- checked, in one transaction. A marker rather than a watermark on `deleted_at`: a tombstone's
-- `deleted_at` is its transaction's start, so one committed after a later-started one would fall behind
-- a watermark and never be seen; an unchecked tombstone is seen whenever it commits. (The column is
-- payment-service's: user-management writes the tombstone with its default, NULL.)
-- `pay_customers.processor_delete_due_at`: when the customer became due for deletion at the processor
-- (its account's tombstone checked, or a card save that found its account deleted mid-way); the pass
-- deletes the due ones not deleted yet (the partial index below), least recently tried first.
ALTER TABLE deleted_users ADD COLUMN IF NOT EXISTS pay_customers_checked_at timestamptz;
CREATE INDEX IF NOT EXISTS deleted_users_pay_customers_unchecked ON deleted_users (deleted_at, user_id) WHERE pay_customers_checked_at IS NULL;
ALTER TABLE pay_customers ADD COLUMN IF NOT EXISTS processor_delete_due_at timestamptz;
CREATE INDEX IF NOT EXISTS pay_customers_processor_delete_due ON pay_customers (processor_delete_tried_at NULLS FIRST) WHERE processor_delete_due_at IS NOT NULL AND processor_deleted_at IS NULL;
-- Customers a save recorded only to delete them (0495's recordForDeletion) are due already.
UPDATE pay_customers SET processor_delete_due_at = processor_delete_tried_at WHERE processor_deleted_at IS NULL AND processor_delete_tried_at IS NOT NULL AND processor_delete_due_at IS NULL;
