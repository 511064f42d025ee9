-- ai-orchestrator: deleted strategies that never decided anything are purged ORCH_DELETED_RETENTION_DAYS
-- after their delete (retire.ts purgeDeletedStrategies, a batch a pass, oldest first): the pass finds them
-- by deleted_at, and this index holds only the deleted ones.
CREATE INDEX IF NOT EXISTS ai_strategies_deleted ON ai_strategies (deleted_at) WHERE deleted_at IS NOT NULL;
