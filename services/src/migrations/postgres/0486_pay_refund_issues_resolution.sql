-- payment-service: refund issues (pay_refund_issues) were kept for ever, and only the service could end
-- one (its condition over: found again, failed after all, the processor's record matching ours). An
-- operator now closes one (POST /refund-issues/:id/resolve, refund-issues.ts): `resolved_at`, who
-- (`resolved_by`: the admin's user id, `resolved_auth_method`: jwt or api-key) and why (`resolution_note`);
-- resolved by the service, `resolved_by` stays null. A closed one seen again is only counted (`seen`,
-- `last_seen_at`): an operator's close stands, one by the service is reopened as before. Resolved issues
-- are deleted PAYMENT_REFUND_ISSUE_RETENTION_DAYS after they were resolved (the kit's deleteOlderThan,
-- on `resolved_at`); open ones are kept. `issue_id`: the route's id (the key holds `:` and `/`).
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS issue_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX IF NOT EXISTS pay_refund_issues_issue_id ON pay_refund_issues (issue_id);
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS resolved_by text;
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS resolved_auth_method text CHECK (resolved_auth_method IN ('jwt', 'api-key'));
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS resolution_note text;
CREATE INDEX IF NOT EXISTS pay_refund_issues_resolved ON pay_refund_issues (resolved_at) WHERE resolved_at IS NOT NULL;
