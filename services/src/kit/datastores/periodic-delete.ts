/**
 * A table's retention as a loop: `pass` deletes at most one bounded batch of rows that are due and
 * answers how many. Passes run every `intervalMs` while nothing is due; a pass that deleted rows is
 * followed by another `backlogPauseMs` later, so a backlog (a first start on a table that kept
 * everything) goes at a batch a second, not flat out on the database the requests need. A failed pass
 * is logged and tried at the next interval. Replicas may each run one: passes lock their rows with
 * SKIP LOCKED, so they skip each other's rows instead of waiting.
 */
import type { Logger } from "pino";
import type { Queryable } from "./postgres";

/**
 * How long the platform keeps its records of trading (orders and surveillance in compliance-monitor,
 * the AI's decisions in ai-orchestrator), in days: producible to a regulator for 5 years under MiFID
 * II (the least a service takes; compliance-monitor's tables' triggers refuse younger deletes too,
 * migration 0424), 6 under SEC 17a-4, hence a default of 7.
 */
export const RECORD_RETENTION_DAYS = { default: 2_557, minimum: 1_825, maximum: 36_500 } as const;

/**
 * A pass for PeriodicDelete: up to `batch` rows of `rows.table` whose `rows.at` is older than `age`
 * (days or seconds: make_interval's unit; a day is a calendar day in the session's time zone) and
 * that meet `rows.also`, a further condition on them, when given, oldest first (an index on `rows.at`
 * serves it), deleted by `rows.key`, skipping rows another replica's pass holds; answers how many
 * went. The names and the condition are the caller's constants, never input.
 */
export async function deleteOlderThan(db: Queryable, rows: { table: string; key: string; at: string; also?: string }, age: { days: number } | { seconds: number }, batch: number): Promise<number> {
  const { table, key, at, also } = rows;
  const [unit, amount] = "days" in age ? ["days", age.days] : ["secs", age.seconds];
  const r = await db.query(
    `WITH due AS (SELECT ${key} FROM ${table} WHERE ${at} < now() - make_interval(${unit} => $1)${also ? ` AND (${also})` : ""} ORDER BY ${at} LIMIT $2 FOR UPDATE SKIP LOCKED)
     DELETE FROM ${table} t USING due WHERE t.${key} = due.${key}`,
    [amount, batch],
  );
  return r.rowCount ?? 0;
}

/** deleteOlderThan with an age in days (the retention settings' unit). */
export const deleteOlderThanDays = (db: Queryable, rows: { table: string; key: string; at: string; also?: string }, days: number, batch: number): Promise<number> =>
  deleteOlderThan(db, rows, { days }, batch);

export class PeriodicDelete {
  private readonly intervalMs: number;
  private readonly backlogPauseMs: number;
  private timer?: NodeJS.Timeout;
  private run?: Promise<void>;
  private stopped = true;
  /** Rows deleted since the start. */
  deleted = 0;

  constructor(
    /** What is deleted, for the log ("te_outbox sent rows"). */
    private readonly what: string,
    private readonly pass: () => Promise<number>,
    private readonly log: Pick<Logger, "warn">,
    opts: { intervalMs?: number; backlogPauseMs?: number } = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 60_000;
    this.backlogPauseMs = opts.backlogPauseMs ?? 1_000;
  }

  /** One pass now (the tests' and an operator's handle); counted in `deleted`. */
  async once(): Promise<number> {
    const n = await this.pass();
    this.deleted += n;
    return n;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      this.run = this.once()
        .then((n) => n > 0)
        .catch((err: unknown) => {
          this.log.warn({ err: { message: (err as Error).message }, deleting: this.what }, "periodic delete failed; trying again later");
          return false;
        })
        .then((more) => {
          if (!this.stopped) this.timer = setTimeout(tick, more ? this.backlogPauseMs : this.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.intervalMs).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.run;
  }
}
