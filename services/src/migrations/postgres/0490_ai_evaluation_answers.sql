-- ai-orchestrator: an API evaluation of a strategy that another replica is evaluating waited for nothing:
-- it was a 409 EVALUATION_IN_PROGRESS, while one joined on the same replica got the running evaluation's
-- decisions. Each decision now names its evaluation (the evaluation's lease token), and the lease row,
-- once its evaluation ends, keeps the answer its callers got (`answer`: its decisions were recorded, or
-- the error) for a while, no longer live: a caller on another replica waits for it (bounded,
-- ORCH_EVALUATION_WAIT_MS) and answers the same (ai-orchestrator/evaluation-answer.ts).
ALTER TABLE ai_decisions ADD COLUMN IF NOT EXISTS evaluation_id uuid;
CREATE INDEX IF NOT EXISTS ai_decisions_evaluation ON ai_decisions (evaluation_id) WHERE evaluation_id IS NOT NULL;
ALTER TABLE ai_evaluation_leases ADD COLUMN IF NOT EXISTS ended_at timestamptz;
ALTER TABLE ai_evaluation_leases ADD COLUMN IF NOT EXISTS answer jsonb;
