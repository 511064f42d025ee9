/**
 * ai-orchestrator (8020): per-user strategies that turn ml-predictor's predictions, the market
 * state and the most similar past regimes (Weaviate) into orders through order-management, within
 * the trading state (kill switch), pre-trade risk and each strategy's own loss stop; every decision
 * is recorded with its inputs. A singleton: its scheduler (scheduler.ts) evaluates each enabled (and not deleted) strategy
 * every `everySeconds` (ORCH_TICK_MS granularity), ORCH_EVAL_CONCURRENCY at a time, round robin by user;
 * one whose evaluation fails waits a doubling backoff (backoff.ts). A disable or DELETE waits for the
 * strategy's evaluations running in any replica (their leases: lease.ts), and one strategy's
 * evaluations are exclusive across replicas (the same leases). A manual evaluation asked while one
 * runs gets that evaluation's answer: joined in this process, waited for (ORCH_EVALUATION_WAIT_MS)
 * in another replica (evaluation-answer.ts), 409 EVALUATION_IN_PROGRESS when the wait ends first.
 */
import { setting } from "../../catalog";
import { afterGrace, defineService, HttpError, isShuttingDown, PEER_CLOSE_GRACE_MS, PeriodicDelete, RECORD_RETENTION_DAYS, Type } from "../../kit";
import { EvaluationBackoff, evaluationFailed } from "./backoff";
import { StrategyOrders } from "./book";
import { evaluateStrategy, isAccountDeleted, type EvaluateDeps } from "./evaluate";
import { awaitEvaluation } from "./evaluation-answer";
import { EvaluationBudget } from "./evaluation-budget";
import { isEvaluationInProgress, leasesGone } from "./lease";
import { cancelWorkingOrders, purgeDeletedStrategies, purgeOldDecisions } from "./retire";
import { registerRoutes } from "./routes";
import { Scheduler } from "./scheduler";
import { OrchestratorStore, type Strategy } from "./store";

/**
 * Due strategies a tick reads at most: the next tick reads them again (the queue is replaced), so a
 * longer read would mostly be read twice; in round robin order the cut falls on the largest users.
 */
const DUE_BATCH = 1_000;

export default defineService({
  name: "ai-orchestrator",
  // Timers past 2^31-1 ms fire after 1 ms in Node (TimeoutOverflowWarning): the timer keys have maxima.
  config: {
    ORCH_TICK_MS: Type.Integer({ default: 5_000, minimum: 0, maximum: 86_400_000, description: "scheduler tick; 0 disables the scheduler (evaluations only through the API)" }),
    ORCH_REGIMES_K: Type.Integer({ default: 5, minimum: 1, maximum: 100, description: "similar past regimes asked from Weaviate" }),
    ORCH_PREDICT_TIMEOUT_MS: Type.Integer({ ...setting("ai-orchestrator", "ORCH_PREDICT_TIMEOUT_MS"), description: "bound on one ml-predictor call" }),
    ORCH_REGIMES_TIMEOUT_MS: Type.Integer({ ...setting("ai-orchestrator", "ORCH_REGIMES_TIMEOUT_MS"), description: "bound on one similar-regimes lookup in Weaviate (per symbol); past it the decision goes on without regimes" }),
    ORCH_MAX_PREDICTION_AGE_BARS: Type.Integer({
      default: 3, minimum: 1, maximum: 100_000,
      description: "a prediction whose latest bar opened more bars ago than this (the model's interval) is a recorded skip, never an order",
    }),
    ORCH_EVAL_CONCURRENCY: Type.Integer({
      default: 8, minimum: 1, maximum: 64,
      description:
        "scheduled evaluations in flight at most (due strategies start round robin by user as slots free; API evaluations are not counted). " +
        "Each holds at most one PostgreSQL connection at a time: past POSTGRES_POOL_MAX (10) they wait for the pool, with the API",
    }),
    ORCH_EVAL_RETRY_MS: Type.Integer({
      default: 5_000, minimum: 1, maximum: 86_400_000,
      description: "a strategy whose evaluation failed is started again by the scheduler after this; each further failure in a row doubles it, up to the strategy's everySeconds",
    }),
    ORCH_MAX_STRATEGIES_PER_USER: Type.Integer({ default: 100, minimum: 1, maximum: 10_000, description: "strategies one user may keep (each is evaluated on the schedule)" }),
    ORCH_DELETED_RETENTION_DAYS: Type.Integer({
      default: 1, minimum: 0, maximum: 3_650,
      description: "a deleted strategy without decisions is purged this long after its delete (GET /strategies/:id then 404); one with decisions is kept until they are deleted (ORCH_DECISION_RETENTION_DAYS)",
    }),
    ORCH_DECISION_RETENTION_DAYS: Type.Integer({
      ...RECORD_RETENTION_DAYS,
      description:
        "a decision is deleted this long after it was made (GET /decisions/:id then 404): the record of why the AI traded, kept as compliance-monitor keeps " +
        "its audit trail (the same default and floor, 7 and 5 years). Kept beyond it, of a live strategy: a decision whose order is not final or whose " +
        "outcome is unrecorded, and one whose order filled (its position is their sum)",
    }),
    ORCH_EVALUATIONS_PER_MINUTE: Type.Integer({
      default: 12, minimum: 1, maximum: 600,
      description: "evaluations one user may ask through the API a minute (POST /strategies/:id/evaluate, any of their strategies; a burst of as many): each records a decision per symbol, kept",
    }),
    ORCH_EVALUATION_WAIT_MS: Type.Integer({
      ...setting("ai-orchestrator", "ORCH_EVALUATION_WAIT_MS"),
      description:
        "a manual evaluation asked while another replica evaluates the strategy waits this long at most for that evaluation's answer (its decisions, or its error) and answers it; " +
        "past it, 409 EVALUATION_IN_PROGRESS (0: at once). Below the gateway's PROXY_TIMEOUT_MS (30 s), which would answer 504 first (the stack refuses it otherwise). " +
        "A replica shutting down ends the wait at once (503 SHUTTING_DOWN), so it does not hold the shutdown past SHUTDOWN_TIMEOUT_MS",
    }),
  },
  async register(ctx) {
    const store = new OrchestratorStore(ctx.app.pg);
    const backoff = new EvaluationBackoff(ctx.app.pg, ctx.config.ORCH_EVAL_RETRY_MS);
    // Recorded once per failed run, scheduled or manual (every caller shares the answer); the caller
    // gets a 503 with the wait before the next attempt (backoff.ts evaluationFailed).
    const failed = async (strategyId: string, e: unknown) => {
      const state = await backoff.failed(strategyId, e).catch((err) => void ctx.log.error({ err, strategyId }, "evaluation failure not recorded"));
      if (!(e instanceof HttpError)) ctx.log.error({ err: e, strategyId }, "evaluation failed");
      return evaluationFailed(e, state ?? undefined);
    };
    const deps: EvaluateDeps = {
      store,
      pg: ctx.app.pg,
      orders: new StrategyOrders(ctx.app.pg),
      peers: ctx.peers,
      redis: ctx.app.redis,
      weaviate: ctx.app.datastores.isEnabled("weaviate") ? () => ctx.app.weaviate.client() : undefined,
      regimesK: ctx.config.ORCH_REGIMES_K,
      predictTimeoutMs: ctx.config.ORCH_PREDICT_TIMEOUT_MS,
      regimesTimeoutMs: ctx.config.ORCH_REGIMES_TIMEOUT_MS,
      // The regimes lookups end with the peer calls once the close began (evaluate.ts evaluationCut).
      cut: afterGrace(ctx.closing, PEER_CLOSE_GRACE_MS),
      // No order submitted once the close began: the one in flight finishes, the symbols after it are refusals (evaluate.ts).
      closing: ctx.closing,
      maxPredictionAgeBars: ctx.config.ORCH_MAX_PREDICTION_AGE_BARS,
      log: ctx.log,
      failed,
    };
    // One evaluation per strategy at a time in this process (scheduler and API share this guard; a call joins the running one).
    const running = new Map<string, Promise<Awaited<ReturnType<typeof evaluateStrategy>>>>();
    // Another replica's evaluation of the strategy running (lease.ts) is an EvaluationInProgress: nothing was tried, nothing failed.
    const evaluate = (s: Strategy) => {
      let p = running.get(s.strategyId);
      if (!p) {
        p = evaluateStrategy(deps, s).finally(() => running.delete(s.strategyId));
        running.set(s.strategyId, p);
      }
      return p;
    };
    // A manual evaluation: one running in another replica is waited for, and its answer given (evaluation-answer.ts).
    const evaluateOrAwait = (s: Strategy) =>
      evaluate(s).catch((e: unknown) => (isEvaluationInProgress(e) ? awaitEvaluation(ctx.app.pg, e, ctx.config.ORCH_EVALUATION_WAIT_MS, ctx.closing) : Promise.reject(e)));
    // A deleted or disabled strategy's evaluation still running may be submitting an order: the cancel, and the disable's answer, wait for it,
    // this process's (the map) and any other replica's (their leases in PostgreSQL, lease.ts).
    const idle = async (strategyId: string) => {
      await running.get(strategyId)?.catch(() => undefined);
      await leasesGone(ctx.app.pg, strategyId, ctx.closing);
    };
    const retire = { orders: deps.orders, peers: ctx.peers, log: ctx.log, idle };
    registerRoutes(ctx, {
      store,
      evaluate: evaluateOrAwait,
      cancelWorkingOrders: (s, requestId) => cancelWorkingOrders(retire, s, requestId),
      idle,
      maxStrategiesPerUser: ctx.config.ORCH_MAX_STRATEGIES_PER_USER,
      evaluationBudget: new EvaluationBudget(ctx.app.pg, ctx.config.ORCH_EVALUATIONS_PER_MINUTE),
    });
    const purges = [
      new PeriodicDelete("decisions past their retention", () => purgeOldDecisions(ctx.app.pg, ctx.config.ORCH_DECISION_RETENTION_DAYS, 5_000), ctx.log),
      new PeriodicDelete("deleted strategies without decisions", () => purgeDeletedStrategies(ctx.app.pg, ctx.config.ORCH_DELETED_RETENTION_DAYS, 5_000), ctx.log),
    ];
    for (const purge of purges) purge.start();
    ctx.onClose(() => Promise.all(purges.map((purge) => purge.stop())).then(() => undefined));
    if (ctx.config.ORCH_TICK_MS > 0) {
      const scheduler = new Scheduler({
        due: (limit) => store.due(limit),
        recheck: (s) => store.stillDue(s.strategyId),
        // Skipped while another replica evaluates it: that evaluation marks it evaluated (or failed).
        // Ended by its owner's deletion (evaluate.ts deletedDuring): an admin's act, not a failure.
        evaluate: (s) =>
          evaluate(s).catch((e: unknown) =>
            isEvaluationInProgress(e) ? void ctx.log.debug({ strategyId: s.strategyId }, "evaluated by another replica: skipped")
            : isAccountDeleted(e) ? void ctx.log.info({ strategyId: s.strategyId }, "evaluation ended: its owner's account was deleted")
            // Logged at warn where it was cut (evaluate.ts); the strategy stays due, for the next replica or start.
            : isShuttingDown(e) ? undefined
            : Promise.reject(e)),
        concurrency: ctx.config.ORCH_EVAL_CONCURRENCY,
        batch: DUE_BATCH,
        log: ctx.log,
      });
      const timer = setInterval(() => void scheduler.tick(), ctx.config.ORCH_TICK_MS);
      timer.unref();
      ctx.onClose(async () => {
        clearInterval(timer);
        await scheduler.close();
        await Promise.allSettled(running.values());
      });
    }
  },
});
