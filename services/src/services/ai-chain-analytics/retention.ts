/**
 * The chains' ClickHouse rows past CHAIN_CLICKHOUSE_RETENTION_DAYS (as ai-orchestrator keeps the
 * decisions, ORCH_DECISION_RETENTION_DAYS): they had no retention, every decision, order and fill
 * kept for good. 18.16 has no TTL, so a pass drops whole month partitions (the kit's
 * dropMonthsEndedBefore): a month goes once it ended before the cutoff's month began, and nothing
 * was written into it since the cutoff. A chain's rows are dated at or after its decision (an order
 * by its creation, after the decision is recorded), so a kept decision keeps its orders; a fill is
 * dated by market time, hence the check of when its month was last written. Rows are kept at least
 * the retention and at most a month more.
 *
 * 0026's ai_chain_decisions_by_id is not partitioned (a read by its key would read a granule of every
 * month): its rows of those months go by a mutation, ALTER TABLE DELETE by `day`, issued only when it
 * has such rows and no unfinished mutation, and looked for again only when the cutoff's month changes
 * (or the last look left something), so a pass does not read the table's `day` column every time.
 */
import { dropMonthsEndedBefore, unfinishedMutations, yyyymm, type ClickHouseKitClient } from "../../kit";

/**
 * Every chain table partitioned by month of `day` (clickhouse/0005, 0022, 0023, 0024, 0027): 0005's
 * ai_chain_decisions and ai_chain_orders are no longer written by this release but still hold rows.
 */
export const MONTHLY_CHAIN_TABLES = [
  "ai_chain_user_decisions", "ai_chain_decisions_by_time", "ai_chain_decisions", "ai_chain_decision_orders",
  "ai_chain_user_orders", "ai_chain_orders", "ai_chain_fills",
] as const;
export const DECISIONS_BY_ID = "ai_chain_decisions_by_id";

/** The first day of `at`'s UTC month, YYYY-MM-DD: rows of days before it are in months that ended. */
const monthStart = (at: Date): string => `${String(yyyymm(at)).slice(0, 4)}-${String(yyyymm(at)).slice(4)}-01`;

export class ChainRetention {
  /** The month start before which ai_chain_decisions_by_id was last found empty, with no mutation of it unfinished. */
  private byIdCleanBefore: string | undefined;
  /** Partitions dropped and mutations issued since the start (tests, logs). */
  readonly done: string[] = [];

  constructor(
    private readonly ch: ClickHouseKitClient,
    private readonly days: number,
  ) {}

  /** The pass under way, which a pass asked for meanwhile joins. */
  private running: Promise<number> | undefined;

  /**
   * One pass at `now`: answers how many partitions it dropped and mutations it issued. A pass asked
   * for while one runs (PeriodicDelete's timer and its `once`, an operator's) joins it and gets its
   * answer: two at once would each find no unfinished mutation and both issue the by-id delete.
   * Across processes there is no lock: the service is a singleton (catalog), stopped before its
   * successor starts, and has no PostgreSQL or Dragonfly to hold one.
   */
  pass(now = new Date()): Promise<number> {
    this.running ??= this.passAt(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async passAt(now: Date): Promise<number> {
    const cutoff = new Date(now.getTime() - this.days * 86_400_000);
    const dropped = await dropMonthsEndedBefore(this.ch, MONTHLY_CHAIN_TABLES, cutoff);
    const mutated = await this.deleteByIdBefore(monthStart(cutoff));
    this.done.push(...dropped, ...(mutated ? [`${DECISIONS_BY_ID} < ${monthStart(cutoff)}`] : []));
    return dropped.length + (mutated ? 1 : 0);
  }

  /** Issues the delete of ai_chain_decisions_by_id's rows before `before` when there are some and none is under way; whether it did. */
  private async deleteByIdBefore(before: string): Promise<boolean> {
    if (this.byIdCleanBefore === before) return false;
    // A delete still under way (or failing: it stays listed until killed) is not issued again behind it.
    if ((await unfinishedMutations(this.ch, DECISIONS_BY_ID)) > 0) return false;
    const some = await this.ch.query(`SELECT 1 FROM ${DECISIONS_BY_ID} WHERE day < toDate({before:String}) LIMIT 1`, { before });
    if (some.length === 0) {
      this.byIdCleanBefore = before;
      return false;
    }
    await this.ch.command(`ALTER TABLE ${DECISIONS_BY_ID} DELETE WHERE day < toDate({before:String})`, { before });
    return true;
  }
}
