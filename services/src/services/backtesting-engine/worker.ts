/**
 * The job loop every replica runs next to its API: claim a job, run it (progress renews the lease),
 * write its curve and trades to ClickHouse under its attempt, record the result in PostgreSQL.
 * A job that cannot succeed (no bars for a symbol, a bad replay file) fails at once; anything else
 * (a datastore hiccup) gives the job back. On shutdown the current job is given back too, so another
 * replica takes it without waiting for the lease.
 *
 * Backtests run on the event loop between awaits: one job at a time per replica (the replicas are
 * the parallelism), each symbol and in-sample candidate a separate slice with a lease renewal after it.
 */
import type { Logger } from "pino";
import { ParameterError } from "../../backtest";
import type { BarCache } from "./bars";
import { JobExecutor } from "./executor";
import { LeaseLostError, type ClaimedJob, type JobQueue } from "./queue";
import type { ResultStore } from "./store";

export interface WorkerOptions {
  pollMs: number;
  /** Minimum time between two lease renewals. */
  heartbeatMs: number;
}

export interface WorkerHooks {
  onClaim?(job: ClaimedJob): void;
  onFinish?(job: ClaimedJob, outcome: "succeeded" | "failed" | "released" | "lost", seconds: number): void;
}

export class JobWorker {
  private stopping = false;
  private current: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly queue: JobQueue,
    private readonly store: ResultStore,
    private readonly bars: BarCache,
    private readonly log: Logger,
    private readonly opts: WorkerOptions,
    private readonly hooks: WorkerHooks = {},
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let job: ClaimedJob | undefined;
      try {
        job = await this.queue.claim();
      } catch (err) {
        this.log.warn({ err: { message: (err as Error).message } }, "job claim failed; retrying");
      }
      if (!job) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.opts.pollMs * (0.75 + Math.random() / 2));
          this.wake = () => { clearTimeout(t); r(); };
        });
        continue;
      }
      this.current = this.process(job);
      await this.current;
    }
  }

  private async process(job: ClaimedJob): Promise<void> {
    const started = Date.now();
    this.hooks.onClaim?.(job);
    this.log.info({ run: job.runId, job: job.idx, attempt: job.attempt, kind: job.spec.kind }, "job claimed");
    let last = 0;
    const progress = async (fraction: number) => {
      if (this.stopping) throw new ShutdownError();
      if (Date.now() - last < this.opts.heartbeatMs && fraction < 1) return;
      last = Date.now();
      await this.queue.heartbeat(job, Math.min(0.99, fraction));
    };
    let outcome: "succeeded" | "failed" | "released" | "lost";
    try {
      const result = await new JobExecutor(job.request, this.bars.loaderFor(job.request)).execute(job.spec, progress);
      await this.queue.heartbeat(job, 0.99); // still ours before writing anything
      await this.store.writeSeries(job, result);
      const { curve: _curve, trades, ...summary } = result;
      outcome = (await this.queue.succeed(job, { ...summary, trades: trades.length })) ? "succeeded" : "lost";
    } catch (err) {
      if (err instanceof LeaseLostError) {
        outcome = "lost";
      } else if (err instanceof ParameterError) {
        await this.queue.fail(job, { code: "INVALID_INPUT", message: err.message, field: err.field }).catch(() => undefined);
        outcome = "failed";
      } else {
        if (!(err instanceof ShutdownError)) this.log.warn({ err: { message: (err as Error).message }, run: job.runId, job: job.idx }, "job interrupted; giving it back");
        const stopping = err instanceof ShutdownError;
        // The reason is what the job's owner reads once its attempts are spent: never the error itself
        // (a driver's message naming a datastore's address and port), which the warning above logs.
        await this.queue.release(job, stopping ? "replica stopped" : FAILED_ATTEMPT, stopping).catch(() => undefined);
        outcome = "released";
      }
    }
    const seconds = (Date.now() - started) / 1000;
    this.hooks.onFinish?.(job, outcome, seconds);
    this.log.info({ run: job.runId, job: job.idx, attempt: job.attempt, outcome, seconds }, "job finished");
  }
}

class ShutdownError extends Error {}

/** What a job failed on a platform error reports (ATTEMPTS_EXHAUSTED once its last attempt failed so). */
export const FAILED_ATTEMPT = "each attempt failed on an error of the platform (a datastore or a replica), not of the backtest's input: submit it again later";
