-- ai-orchestrator: each user's budget of evaluations asked through the API (POST /strategies/:id/evaluate,
-- ai-orchestrator/evaluation-budget.ts), a token bucket: ORCH_EVALUATIONS_PER_MINUTE tokens at most,
-- refilled at that rate. Each evaluation records a decision per symbol of the strategy, kept for good,
-- and the API ran one at each call: one user asking in a loop filled the decisions table (found by
-- session 42's business-logic hunt, left; fixed by session 45's). Per user, not per strategy: creating
-- strategies gives no more. A row per user who ever asked; taken under the row's lock (the upsert).
CREATE TABLE IF NOT EXISTS ai_evaluation_budgets (
  user_id     text PRIMARY KEY,
  tokens      double precision NOT NULL,
  refilled_at timestamptz NOT NULL,
  -- A user id's one spelling (0400).
  CONSTRAINT ai_evaluation_budgets_user_id_canonical CHECK (user_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' OR user_id !~ '[A-F]')
);
