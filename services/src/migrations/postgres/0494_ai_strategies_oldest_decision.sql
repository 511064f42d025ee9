-- ai-orchestrator: the decision retention pass (retire.ts purgeOldDecisions) found a deleted strategy's
-- decisions through the strategy: every deleted strategy that still had decisions, oldest delete first,
-- one probe of ai_decisions_strategy each, until a batch was found. A deleted strategy keeps its
-- decisions until they are past their retention (years), so every pass probed all of those deleted in
-- that time whose decisions were not due yet, more every day. Each deleted strategy now carries a lower
-- bound of its oldest decision's decided_at (oldest_decision_at: set by its delete, store.ts, and by each
-- pass that probes it; NULL once none is left and the delete is over an hour old), and the pass reads
-- this index from its oldest entry up to the retention's cutoff: only the strategies with a decision due.
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS oldest_decision_at timestamptz;

-- The strategies deleted before: their oldest decision (one probe each, once). A decision recorded after
-- a delete (an evaluation in flight then) is no older than the delete less a minute: the bound within the first hour.
UPDATE ai_strategies s SET oldest_decision_at = least(
    (SELECT min(d.decided_at) FROM ai_decisions d WHERE d.strategy_id = s.strategy_id),
    CASE WHEN s.deleted_at > now() - interval '1 hour' THEN s.deleted_at - interval '1 minute' END)
  WHERE s.deleted_at IS NOT NULL AND s.oldest_decision_at IS NULL;

CREATE INDEX IF NOT EXISTS ai_strategies_deleted_oldest_decision ON ai_strategies (oldest_decision_at)
  WHERE deleted_at IS NOT NULL AND oldest_decision_at IS NOT NULL;
