/**
 * backtesting-engine (guide: Backtesting Engine, 8015): backtests of the built-in strategies on
 * ClickHouse bars, replay files or the seeded generator; parameter sweeps and walk-forward runs
 * split into jobs that every replica works on (PostgreSQL queue, queue.ts); results in PostgreSQL,
 * curves and trades in ClickHouse; equity/drawdown charts as SVG.
 *
 * Routes (behind the gateway at /api/backtests):
 *   GET  /strategies                  names, descriptions, parameters (bounds, defaults)
 *   POST /                            submit -> 202 { id, jobs }; 400 naming the field on bad input
 *   GET  /:id                         status and progress (jobs queued/running/succeeded/failed/cancelled, fraction)
 *   POST /:id/cancel                  its unfinished jobs stop -> 200 { cancelledJobs }; 409 when it is already final
 *   DELETE /:id                       a final run and its jobs -> 204 (its curves and trades at the sweep's next pass); 409 while queued or running (cancel first)
 *   GET  /:id/results?sort=sharpe     per job: parameters, metrics, per-symbol metrics, walk-forward choice
 *   GET  /:id/jobs/:job/equity        equity and drawdown curve (downsampled, extremes kept)
 *   GET  /:id/jobs/:job/trades        trades (runs and walk-forward folds)
 *   GET  /:id/jobs/:job/chart.svg     chart of one job; /:id/chart.svg: the best job
 *
 * Retention (sweep.ts, every BACKTEST_SWEEP_INTERVAL_MS): ClickHouse rows of runs PostgreSQL no longer
 * has and of attempts other than the recorded one; finished runs older than BACKTEST_RETENTION_DAYS.
 */
import { hostname } from "node:os";
import { defineService, PeriodicDelete, Type, type ConfigOf, type ServiceContext } from "../../kit";
import { BarCache } from "./bars";
import { PromotedModelScorer } from "./model";
import { JobQueue } from "./queue";
import { registerRoutes } from "./routes";
import { ResultStore } from "./store";
import { SeriesSweep } from "./sweep";
import { JobWorker } from "./worker";

const config = {
  // A run holds its bars and the strategy's series in memory, about 85 bytes a bar over a 150 MB base
  // (bench/backtest.ts under /usr/bin/time: 235 MB at 1M bars, 1.0 GB at 10M): 5M bars fit the
  // worker's 1 GiB (catalog/sizing.ts). At 50M one request OOM-killed each replica that claimed it.
  // The replica's bar cache holds at most this many bars too (bars.ts): four cached 5M-bar series held 960 MB.
  BACKTEST_MAX_BARS: Type.Integer({ default: 5_000_000, minimum: 1_000, maximum: 500_000_000, description: "bars one backtest may read (symbols x bars), and the bound of each replica's bar cache; size with the worker's memory, about 85 bytes a bar" }),
  BACKTEST_MAX_PARAMETER_SETS: Type.Integer({ default: 1_000, minimum: 1, maximum: 100_000, description: "parameter sets one sweep may expand to" }),
  // Ten times the largest plain run (BACKTEST_MAX_BARS): a walk-forward fold of about 7 s of a replica on this host (7.4M bar-steps/s, vectorized).
  BACKTEST_MAX_JOB_BAR_STEPS: Type.Integer({ default: 50_000_000, minimum: 1_000, maximum: 10_000_000_000, description: "bars one job may simulate: a walk-forward fold's grid x training bars x symbols, plus its test bars" }),
  BACKTEST_MAX_OPEN_JOBS_PER_USER: Type.Integer({ default: 2_000, minimum: 1, maximum: 1_000_000, description: "queued and running jobs one user may have (the claim takes turns between users, queue.ts; this bounds what one user keeps in the queue)" }),
  BACKTEST_LEASE_MS: Type.Integer({ default: 60_000, minimum: 1_000, maximum: 3_600_000, description: "a claimed job returns to the queue this long after its worker's last sign of life" }),
  BACKTEST_MAX_ATTEMPTS: Type.Integer({ default: 3, minimum: 1, maximum: 20 }),
  BACKTEST_STRANDED_RUN_REPAIR_MS: Type.Integer({ default: 300_000, minimum: 1_000, maximum: 86_400_000, description: "how often at most a replica's claim first settles runs left open with every job final and cancels the open runs of deleted accounts (settle.ts); the pass reads bt_runs, so not every claim" }),
  BACKTEST_POLL_MS: Type.Integer({ default: 500, minimum: 10, maximum: 60_000 }),
  BACKTEST_WORKER: Type.Boolean({ default: true, description: "run the job loop in this replica" }),
  BACKTEST_CURVE_POINTS: Type.Integer({ default: 2_000, minimum: 10, maximum: 1_000_000, description: "points stored per equity curve" }),
  BACKTEST_MAX_TRADES_STORED: Type.Integer({ default: 100_000, minimum: 0, maximum: 10_000_000 }),
  // A pass issues at most one ClickHouse mutation per table, and mutations rewrite the parts they
  // touch: minutes apart, not the kit's default minute. A backlog goes at 1,000 runs a pass.
  BACKTEST_SWEEP_INTERVAL_MS: Type.Integer({ default: 600_000, minimum: 1_000, maximum: 86_400_000, description: "how often a replica sweeps ClickHouse rows no read returns (deleted runs, superseded attempts) and runs past BACKTEST_RETENTION_DAYS; replicas take turns" }),
  BACKTEST_RETENTION_DAYS: Type.Integer({ default: 180, minimum: 0, maximum: 36_500, description: "finished backtests older than this are deleted with their curves and trades; 0 keeps them" }),
  BACKTEST_REPLAY_DIR: Type.Optional(Type.String({ description: "directory of replay files (CSV / JSON lines); the recorded sample is built in" })),
};

type Config = ConfigOf<typeof config>;

export default defineService({
  name: "backtesting-engine",
  config,
  register(ctx: ServiceContext<Config>) {
    const c = ctx.config;
    const pg = ctx.app.pg;
    const ch = ctx.app.clickhouse;
    const queue = new JobQueue(pg, `${hostname()}:${process.pid}`, c.BACKTEST_LEASE_MS, { everyMs: c.BACKTEST_STRANDED_RUN_REPAIR_MS });
    const store = new ResultStore(pg, ch, c.BACKTEST_CURVE_POINTS, c.BACKTEST_MAX_TRADES_STORED);
    registerRoutes(ctx, {
      queue, store, maxAttempts: c.BACKTEST_MAX_ATTEMPTS, maxOpenJobsPerUser: c.BACKTEST_MAX_OPEN_JOBS_PER_USER, replayDir: c.BACKTEST_REPLAY_DIR, clickhouseEnabled: true,
      limits: { maxBars: c.BACKTEST_MAX_BARS, maxParameterSets: c.BACKTEST_MAX_PARAMETER_SETS, maxJobBarSteps: c.BACKTEST_MAX_JOB_BAR_STEPS },
    });
    // Rows of attempts other than the recorded one are left an hour after their job's end: an attempt
    // that lost its lease while writing them may still be writing.
    const sweep = new SeriesSweep(pg, ch, { batch: 1_000, graceMs: 3_600_000, retentionDays: c.BACKTEST_RETENTION_DAYS });
    const sweeper = new PeriodicDelete("backtest series and expired runs", () => sweep.pass(), ctx.log, { intervalMs: c.BACKTEST_SWEEP_INTERVAL_MS, backlogPauseMs: c.BACKTEST_SWEEP_INTERVAL_MS });
    ctx.app.addHook("onReady", async () => sweeper.start());
    ctx.onClose(() => sweeper.stop());
    if (c.BACKTEST_WORKER) {
      const scorer = new PromotedModelScorer(pg);
      const worker = new JobWorker(queue, store, new BarCache({ clickhouse: ch, replayDir: c.BACKTEST_REPLAY_DIR, scoreBars: scorer.score, modelVersion: scorer.version }, c.BACKTEST_MAX_BARS), ctx.log, {
        pollMs: c.BACKTEST_POLL_MS,
        heartbeatMs: Math.max(100, Math.floor(c.BACKTEST_LEASE_MS / 4)),
      });
      ctx.app.addHook("onReady", async () => worker.start());
      ctx.onClose(async () => {
        await worker.stop();
        await scorer.close();
      });
    }
  },
});
