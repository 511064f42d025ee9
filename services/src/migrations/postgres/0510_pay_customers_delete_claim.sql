-- payment-service: deleted-customers passes at once (two replicas, an operator's POST /reconcile beside
-- the periodic pass) each took the same due customer (0507's customersDue marked it tried in a
-- statement of its own, so the next pass's statement took it again) and each sent the processor its
-- delete: double traffic, the second answered 404 (taken as done). A pass now claims one due customer
-- at a time, committed on its own (no transaction held over the processor call), as the refund
-- reconciler claims a refund (0432):
-- `processor_delete_claim`: the claiming pass's token; `processor_delete_claimed_until`: its lease (one
-- processor request's every attempt with a margin). A pass takes only customers under no unexpired
-- claim; one that did not delete it (the processor unreachable) ends its claim, so the next pass
-- tries it again; one that crashed leaves a lease that runs out. A card save that records the customer
-- it made for a deleted account (recordForDeletion) records it claimed, and deletes it itself.
ALTER TABLE pay_customers ADD COLUMN IF NOT EXISTS processor_delete_claim uuid;
ALTER TABLE pay_customers ADD COLUMN IF NOT EXISTS processor_delete_claimed_until timestamptz;
