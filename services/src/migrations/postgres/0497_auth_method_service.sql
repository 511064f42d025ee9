-- A peer service acting for a user on its own (ai-orchestrator placing a strategy's orders) sends
-- `x-auth-method: service` (kit identity.ts AUTH_METHODS); a call carrying a user id without a known
-- auth method now has no identity. Before, any call without the header was taken for a user session
-- (`jwt`), so an audit row could claim a session that never existed. The audit columns that record how
-- the caller signed in take `service` too: trading_state_changes.auth_method (kill switch changes,
-- migration 0196) and pay_refund_issues.resolved_auth_method (refund issue closes, migration 0486).
ALTER TABLE trading_state_changes DROP CONSTRAINT IF EXISTS trading_state_changes_auth_method_check;
ALTER TABLE trading_state_changes ADD CONSTRAINT trading_state_changes_auth_method_check CHECK (auth_method IN ('jwt', 'api-key', 'service'));
ALTER TABLE pay_refund_issues DROP CONSTRAINT IF EXISTS pay_refund_issues_resolved_auth_method_check;
ALTER TABLE pay_refund_issues ADD CONSTRAINT pay_refund_issues_resolved_auth_method_check CHECK (resolved_auth_method IN ('jwt', 'api-key', 'service'));
