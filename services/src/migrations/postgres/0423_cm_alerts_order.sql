-- compliance-monitor: the order an alert is about (a fill's order for the fill rules). A trader is told
-- that an alert was raised, on which symbol and order, and the rule's category in words, never the
-- alert's message or evidence (they name the thresholds that tripped it: trading/complianceAlertView.ts);
-- the order was only in the evidence before. Alerts raised before this have none (cm_alerts is
-- append-only: its rows are not updated).
ALTER TABLE cm_alerts ADD COLUMN IF NOT EXISTS order_id text;
