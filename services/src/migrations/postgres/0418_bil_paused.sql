-- billing-service: billing pauses while an account is disabled. Before, the cycle went on renewing a
-- disabled account's subscription (only its charges waited), so an account disabled for three months
-- came back owing three renewals for a service it could not use, all charged at once when an admin
-- enabled it again. Now a subscription whose period ends while its owner is disabled is not renewed:
-- `paused_at` records when the cycle held it, and the first cycle after the account is enabled again
-- renews it from that moment (a new period and billing anchor, not back-dated). A subscription made
-- `unpaid` by dunning, whose invoice is then paid late after its period ended, resumes the same way.

ALTER TABLE bil_subscriptions ADD COLUMN IF NOT EXISTS paused_at timestamptz;
