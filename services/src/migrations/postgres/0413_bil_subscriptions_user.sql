-- billing-service: every charge reads the payment method of the user's newest subscription
-- (repo.ts currentPaymentMethod), and the subscription list and the trial check read a user's
-- subscriptions: found by user rather than by a scan of the table.
CREATE INDEX IF NOT EXISTS bil_subscriptions_user ON bil_subscriptions (user_id, created_at DESC);
