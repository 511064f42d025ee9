-- ai-orchestrator: the retention pass (retire.ts purgeOldDecisions) read 0480's ai_decisions_decided from
-- its oldest entry on: a live strategy's filled and still settling decisions are kept, so every pass read
-- all of them again, more each day, before the ones it could delete. This index holds only the decisions
-- that added nothing to their strategy's book (retire.ts SETTLED_NOTHING, the same text: PostgreSQL
-- proves the query's condition implies it), so a pass reads what is due; a deleted strategy's, all
-- deletable, are found through the strategy (ai_strategies_deleted, then ai_decisions_strategy).
CREATE INDEX IF NOT EXISTS ai_decisions_settled_nothing ON ai_decisions (decided_at)
  WHERE NOT (action IN ('buy', 'sell') AND order_id IS NULL AND risk IS NULL)
    AND (order_id IS NULL OR order_final_status IS NOT NULL)
    AND coalesce(order_filled_signed, 0) = 0;
