-- ai-orchestrator: a lease kept to its expiry after an order submit without an answer (lease.ts keep())
-- makes a disable wait but no longer makes the strategy's evaluations exclusive; the flag says so
-- (it was marked by rewriting the token's UUID version digit).
ALTER TABLE ai_evaluation_leases ADD COLUMN IF NOT EXISTS kept boolean NOT NULL DEFAULT false;
