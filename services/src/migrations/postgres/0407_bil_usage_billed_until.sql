-- billing-service: bil_subscriptions.usage_billed_until, the instant up to which the current
-- period's metered usage is invoiced already (NULL: none of it is). A plan change invoices the usage
-- so far under the plan then in force and sets it; the renewal, or the end of the subscription,
-- invoices the rest from there under the plan in force since; a new period starts at NULL. Before,
-- the renewal priced the whole period's usage by the plan current at renewal: a switch to a plan
-- with a large allowance just before the period ended made the period's usage free.

ALTER TABLE bil_subscriptions ADD COLUMN IF NOT EXISTS usage_billed_until timestamptz;
