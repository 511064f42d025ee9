/**
 * Retention of ClickHouse's dead letters (`consumer_dead_letters`, migrations/clickhouse 0007, and
 * its id table `consumer_dead_letter_ids`, 0032) and of their replay ledger in PostgreSQL
 * (`ch_dead_letter_replays`, migrations/postgres 0506): kept for good before session 59.
 *
 * No TTL. Debian's 18.16, the tests' server and the oldest the migrations are written for, refuses the
 * clause (`MODIFY TTL` is a syntax error there: TTL came in 19.6); production's 24.8 would take one,
 * but a migration's TTL is a constant, not a setting, and could not keep a letter's ledger row in step
 * (below). So database-service deletes by mutation (ALTER TABLE ... DELETE: asynchronous, each one
 * rewriting the parts it touches), at most one under way per table:
 *
 * 1. Letters set aside longer ago than DEAD_LETTER_CH_RETENTION_DAYS, replayed or not, by their
 *    `created_at` (one mutation, issued when there are some). A letter not replayed is kept that long
 *    too, and the setting takes no less than 30 days: the MessagesSetAside alert fires within 15 minutes
 *    of its write, so an operator has had a month to look at it and replay it. A letter stays in
 *    ClickHouse at most the retention and a pass's interval (plus the mutation's own time).
 * 2. Once that mutation finished, the ids of letters no longer there (a mutation with a NOT IN
 *    subquery, which 18.16 takes). Until then a stale id only makes a lookup find no letter (404).
 * 3. Ledger rows replayed or claimed longer ago than DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS (at least
 *    the letters' retention) and an hour, 5,000 a pass, only while ClickHouse holds no letter past the
 *    letters' retention and no mutation of either table is unfinished: a letter is set aside before its
 *    replay is claimed, so the row's letter is gone by then. A row deleted while its letter is still there would
 *    show a replayed letter as replayable, and a second replay would send its message again (session
 *    56 kept both stores' rows for that reason). A row released (a failed send: neither claimed nor
 *    replayed) tells nothing a missing row does not, and goes at any pass.
 */
import { Gauge, type Registry } from "prom-client";
import { clickhouseDateTime, type ClickHouseKitClient, type Queryable, type UnfinishedMutation, unfinishedMutationsOf } from "../../kit";

export const LETTERS = "consumer_dead_letters";
export const LETTER_IDS = "consumer_dead_letter_ids";
const DAY_MS = 86_400_000;
const CLOCK_MARGIN_MS = 3_600_000;
/** Rows of the id table whose letter is no longer in the letters' table (18.16 takes the subquery in a mutation too). */
const LEFT_IDS = `(consumer_group, topic, msg_partition, msg_offset) NOT IN (SELECT consumer_group, topic, msg_partition, msg_offset FROM ${LETTERS})`;

export interface ClickHouseLetterRetentionDays {
  /** DEAD_LETTER_CH_RETENTION_DAYS: letters set aside longer ago are deleted. */
  letters: number;
  /** DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS: ledger rows replayed or claimed longer ago are deleted. */
  replays: number;
}

/** What one pass did, for the tests and the log. */
export interface RetentionPass {
  /** Mutations issued: `consumer_dead_letters` and/or `consumer_dead_letter_ids`. */
  mutations: string[];
  /** Ledger rows deleted. */
  ledgerRows: number;
}

/**
 * Who hears of a retention mutation that failed or is stuck. 18.16 has no KILL MUTATION: such a
 * mutation stays unfinished and every later pass skips (one under way at a time), which nothing
 * else shows. A mutation is stuck when ClickHouse tells its failure (system.mutations
 * `latest_fail_reason`, which 18.16 lacks) or when it is unfinished past `stuckAfterS` (a delete of
 * dead letters takes seconds).
 */
export interface RetentionWatch {
  /** Told at error once a pass while any is stuck, with each one's table, id, command, age and reason. */
  log: { error(obj: object, msg: string): void };
  /** The stuck mutations of each table, set at every pass. */
  stuck: Gauge<"table">;
  /** Seconds unfinished after which a mutation ClickHouse tells no failure of is stuck (default 3,600). */
  stuckAfterS?: number;
}

/** RetentionWatch's gauge, in `registry`: what an alert reads (max over the replicas, which each see the same mutations). */
export function stuckMutationsGauge(registry: Registry): Gauge<"table"> {
  return new Gauge({
    name: "dead_letter_retention_stuck_mutations",
    help: "Retention mutations of ClickHouse's dead letters that failed or have been unfinished over an hour (each holds every later pass back until removed), by table",
    labelNames: ["table"],
    registers: [registry],
  });
}

export class ClickHouseLetterRetention {
  /**
   * Whether ids of deleted letters may be left: after the letters' delete, and at the start (a pass
   * cut short, or a restart, between the two mutations); looked for before a mutation is issued.
   */
  private idsDue = true;
  private running: Promise<RetentionPass> | undefined;

  constructor(
    private readonly ch: ClickHouseKitClient,
    private readonly pg: Queryable,
    private readonly days: ClickHouseLetterRetentionDays,
    private readonly batch = 5_000,
    private readonly watch?: RetentionWatch,
  ) {
    if (days.letters > days.replays) throw new RangeError("the ledger's retention must be at least the letters' (a row must outlive its letter)");
    for (const table of [LETTERS, LETTER_IDS]) watch?.stuck.set({ table }, 0);
  }

  /** PeriodicDelete's pass: how many things it did (mutations issued and ledger rows deleted). */
  readonly periodicPass = async (): Promise<number> => {
    const done = await this.pass();
    return done.mutations.length + done.ledgerRows;
  };

  /**
   * One pass at `now`. A pass asked for while one runs joins it (two at once would both find no
   * mutation under way and both issue one). Replicas of database-service each run their own passes:
   * two may issue the same delete, which deletes nothing twice (the second rewrites the parts again).
   */
  pass(now = new Date()): Promise<RetentionPass> {
    this.running ??= this.passAt(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async passAt(now: Date): Promise<RetentionPass> {
    const done: RetentionPass = { mutations: [], ledgerRows: 0 };
    // A delete still under way (or failing: it stays listed until killed) is not issued again behind it.
    const unfinished = await unfinishedMutationsOf(this.ch, [LETTERS, LETTER_IDS]);
    this.report(unfinished);
    if (unfinished.length > 0) return done;
    const lettersCutoff = clickhouseDateTime(now.getTime() - this.days.letters * DAY_MS); // (as the writers stamp `created_at`: trading/infra/deadLetters.ts)
    if (await this.anyLetterBefore(lettersCutoff)) {
      await this.ch.command(`ALTER TABLE ${LETTERS} DELETE WHERE created_at < toDateTime({cutoff:String})`, { cutoff: lettersCutoff });
      this.idsDue = true;
      done.mutations.push(LETTERS);
      return done;
    }
    if (this.idsDue) {
      if ((await this.ch.query(`SELECT 1 AS found FROM ${LETTER_IDS} WHERE ${LEFT_IDS} LIMIT 1`)).length > 0) {
        await this.ch.command(`ALTER TABLE ${LETTER_IDS} DELETE WHERE ${LEFT_IDS}`);
        done.mutations.push(LETTER_IDS);
      }
      this.idsDue = false;
    }
    // No letter is left from before the letters' cutoff (nor a mutation under way), so none from
    // before the ledger's, which is no later: every due row's letter is gone. The hour's margin: a
    // row's time is PostgreSQL's clock and a letter's its writer's, which may run ahead of it.
    done.ledgerRows = await deleteLedgerRowsBefore(this.pg, new Date(now.getTime() - this.days.replays * DAY_MS - CLOCK_MARGIN_MS), this.batch);
    return done;
  }

  /** The stuck mutations (RetentionWatch) to the watch's gauge, and to its log when there are any. */
  private report(unfinished: UnfinishedMutation[]): void {
    if (!this.watch) return;
    const after = this.watch.stuckAfterS ?? 3_600;
    const stuck = unfinished.filter((m) => !!m.failReason || m.ageS >= after);
    for (const table of [LETTERS, LETTER_IDS]) this.watch.stuck.set({ table }, stuck.filter((m) => m.table === table).length);
    if (stuck.length === 0) return;
    const mutations = stuck.map((m) => ({
      table: m.table,
      mutationId: m.mutationId,
      command: m.command,
      unfinishedSeconds: m.ageS,
      reason: m.failReason || (m.failReason === "" ? "none told yet" : "not told by this server (its system.mutations has no latest_fail_reason, as 18.16's): see its log"),
    }));
    this.watch.log.error({ mutations }, "a ClickHouse dead-letter retention mutation failed or is stuck: no retention of the letters, their ids or their ledger until it is removed (README: Retention, ClickHouse's consumer_dead_letters)");
  }

  private async anyLetterBefore(cutoff: string): Promise<boolean> {
    return (await this.ch.query(`SELECT 1 AS found FROM ${LETTERS} WHERE created_at < toDateTime({cutoff:String}) LIMIT 1`, { cutoff })).length > 0;
  }
}

/**
 * Up to `batch` ledger rows, released ones (neither claimed nor replayed) and those replayed (or, not
 * replayed, claimed) before `cutoff` oldest first, deleted; a row a claim or a mark holds is skipped and
 * taken at a later pass. No index: the ledger holds a row per letter an operator replayed, and a pass
 * runs every quarter of an hour. The caller made sure ClickHouse holds no letter set aside before `cutoff`.
 */
export async function deleteLedgerRowsBefore(pg: Queryable, cutoff: Date, batch: number): Promise<number> {
  const r = await pg.query(
    `WITH due AS (
       SELECT letter_id, letter_created_at FROM ch_dead_letter_replays
        WHERE coalesce(replayed_at, replay_claimed_at) < $1 OR (replayed_at IS NULL AND replay_claim IS NULL)
        ORDER BY coalesce(replayed_at, replay_claimed_at) NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED)
     DELETE FROM ch_dead_letter_replays r USING due WHERE r.letter_id = due.letter_id AND r.letter_created_at IS NOT DISTINCT FROM due.letter_created_at`,
    [cutoff, batch],
  );
  return r.rowCount ?? 0;
}
