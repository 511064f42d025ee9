-- ai-orchestrator: decisions are deleted ORCH_DECISION_RETENTION_DAYS after they were made (retire.ts
-- purgeOldDecisions, a batch of the oldest a pass, kept as long as compliance-monitor's audit trail by
-- default: 7 years; of a live strategy, not those still settling nor its filled ones, its position).
-- This index serves that order and bound; a deleted strategy is purged once its decisions are gone.
CREATE INDEX IF NOT EXISTS ai_decisions_decided ON ai_decisions (decided_at);
