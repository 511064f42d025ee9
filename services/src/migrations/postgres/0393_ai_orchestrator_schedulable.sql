-- ai-orchestrator: the scheduler's due query (OrchestratorStore.due, every ORCH_TICK_MS) read every
-- row of ai_strategies, disabled and deleted ones included (a sequential scan: the table had only its
-- primary key and the per-user indexes). Deleted strategies stay for good (their decisions reference
-- them) and disabled ones are paused: the rows that can be due are the enabled, live ones, and this
-- partial index holds only those. Its key is the last evaluation (never evaluated first); when a
-- strategy is next due also depends on its every_seconds and eval_retry_at, which PostgreSQL cannot
-- index as one expression (timestamptz + interval is not immutable), so those are checked on the
-- rows the index gives.
CREATE INDEX IF NOT EXISTS ai_strategies_schedulable ON ai_strategies (last_evaluated_at NULLS FIRST)
  WHERE enabled AND deleted_at IS NULL;

-- The code of the last failed evaluation's error (an HttpError's code, DATASTORE_UNAVAILABLE or
-- INTERNAL_ERROR): what GET /strategies shows of the backoff. eval_error keeps the message for the
-- logs and operators; it may quote a peer and is not in the API.
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS eval_error_code text;
