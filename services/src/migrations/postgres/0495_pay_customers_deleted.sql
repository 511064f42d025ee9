-- payment-service: the processor customer a deleted account's first card save made (pay_customers)
-- stayed at the processor with its cards: nothing deleted it (only a save whose account was deleted
-- mid-way deleted the customer it had just made, and a failure there was only logged). Every
-- reconciliation pass now deletes at the processor the customers of deleted accounts (user-management's
-- tombstones, deleted_users), until the processor confirms (deleted-customers.ts).
-- `processor_deleted_at`: when the processor confirmed it (or answered it has no such customer); NULL while it is there.
-- `processor_delete_tried_at`: the last attempt (a pass takes the least recently tried first).
ALTER TABLE pay_customers ADD COLUMN IF NOT EXISTS processor_deleted_at timestamptz;
ALTER TABLE pay_customers ADD COLUMN IF NOT EXISTS processor_delete_tried_at timestamptz;
