/**
 * ai-orchestrator's scheduler: evaluates the due strategies, at most `concurrency` at a time.
 *
 * A tick reads the due strategies (OrchestratorStore.due: round robin by user, the most overdue
 * first, at most `batch`) and makes them the queue of what starts next, in place of the previous
 * tick's queue. Whenever a slot is free the next queued strategy starts, without waiting for the
 * next tick: a slow ml-predictor answer holds one slot, not every other strategy. The round robin
 * order is the fairness: one user's 100 due strategies take turns with another user's single one
 * (that one starts with the first free slot), and no slot is kept idle for a user who has nothing
 * due. Reads never overlap (a tick while the previous one still reads is skipped); evaluations
 * outlast the tick that started them.
 *
 * A queued strategy is read again right before it starts (`recheck`): one evaluated (by the API),
 * disabled, deleted since the tick read it is not started, and one changed starts with its current
 * settings. A strategy in flight is never queued; the per-strategy guard shared with the API's
 * manual evaluation lives in `evaluate` (index.ts: a second call joins the running one).
 *
 * A hand-written pool, not a library: p-limit is ESM-only (the services compile to CommonJS) and
 * services/package.json has no other; what is needed besides the limit (a queue replaced at each
 * tick, skipping what is in flight, starting nothing once closed) is this file's bookkeeping.
 */
import type { Logger } from "pino";
import { isEvaluationFailed } from "./backoff";

export interface Schedulable {
  strategyId: string;
  userId: string;
}

export interface SchedulerDeps<S extends Schedulable> {
  /** The due strategies, in the order to start them, at most `limit`. */
  due: (limit: number) => Promise<S[]>;
  /** The strategy as it is now if it is still due, else undefined. */
  recheck: (s: S) => Promise<S | undefined>;
  evaluate: (s: S) => Promise<unknown>;
  /** Evaluations in flight at most (ORCH_EVAL_CONCURRENCY). */
  concurrency: number;
  /** Due strategies read per tick at most. */
  batch: number;
  log: Pick<Logger, "error">;
}

export class Scheduler<S extends Schedulable> {
  private queue: S[] = [];
  private readonly inFlight = new Map<string, Promise<void>>();
  private reading: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: SchedulerDeps<S>) {}

  /** Evaluations this scheduler has in flight. */
  get running(): number {
    return this.inFlight.size;
  }

  /** Reads the due strategies and starts as many as there are free slots; resolves once read. */
  tick(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Starts nothing more; resolves once the read and every evaluation in flight have ended. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    await this.reading;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  private async read(): Promise<void> {
    try {
      const due = await this.deps.due(this.deps.batch);
      if (this.closed) return;
      this.queue = due.filter((s) => !this.inFlight.has(s.strategyId));
      this.fill();
    } catch (e) {
      this.deps.log.error({ err: e }, "scheduler tick failed");
    }
  }

  private fill(): void {
    while (!this.closed && this.inFlight.size < this.deps.concurrency) {
      const s = this.queue.shift();
      if (!s) return;
      if (!this.inFlight.has(s.strategyId)) this.start(s);
    }
  }

  private start(queued: S): void {
    const id = queued.strategyId;
    const run = (async () => {
      const s = await this.deps.recheck(queued);
      if (s && !this.closed) await this.deps.evaluate(s);
    })()
      // An EVALUATION_FAILED answer was logged with its cause where it was made (index.ts): not twice.
      .catch((e) => void (isEvaluationFailed(e) || this.deps.log.error({ err: e, strategyId: id }, "evaluation failed")))
      .finally(() => {
        this.inFlight.delete(id);
        this.fill();
      });
    // Set before `run` can settle (its callbacks run on a later microtask).
    this.inFlight.set(id, run);
  }
}
