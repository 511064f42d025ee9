/**
 * Submitting orders: the pre-trade check and the insert in one transaction, serialized per user
 * across every replica (the users' advisory locks, then the exposure read under them), so two
 * concurrent orders of a user can never both pass a limit that together they breach. Each order is
 * stored with the decided status (accepted, or rejected with the named reason) and both its state
 * changes (`new`, then the decision) are enqueued in the outbox in the same transaction.
 *
 * The submissions waiting together are decided in one transaction (group commit, GroupCommit): one
 * MGET for the market facts (while the transaction starts), then two round trips to PostgreSQL
 * whatever the number of orders (each one, on a busy host, a wait for two processes to be
 * scheduled): BEGIN with the lock of the batch's users, their facts and the stored orders of their
 * Idempotency-Keys; then the insert of the orders and their events (one statement) with COMMIT.
 * These statements are prepared on the connection (planned once, not on every batch) and sent
 * without parameters (the kit's executeStatement / executeWith). Orders of one user in a batch are decided in arrival
 * order, each seeing the ones before it (domain.ts decideSubmissions). An Idempotency-Key is looked
 * up under its user's lock, so a replay racing its first request on another replica finds it stored.
 *
 * Each submission carries a deadline (OM_SUBMIT_DEADLINE_MS after its request was read; see
 * trading/submitDeadline.ts for who relies on it): one already past when its batch starts is not
 * tried, and a batch's COMMIT is sent only before the earliest deadline of its submissions. The
 * statements run under SET LOCAL statement_timeout and lock_timeout of the time left, so a wait on a
 * user's lock or a slow statement ends at the deadline instead of running on; and the time is checked
 * again right before COMMIT (the timeouts are per statement). Past it the transaction is rolled back,
 * the submissions expired by then are answered 503 SUBMIT_DEADLINE_PASSED (nothing was stored, the
 * caller may retry), and the others are tried again in a transaction of their own; at the check
 * before COMMIT, a replay of an order an earlier request stored is answered with that order.
 * What is not bounded: a COMMIT once sent (PostgreSQL does not time out the commit itself).
 */
import type { Redis } from "ioredis";
import { ACCOUNT_LOCKS, deletedAccountsOf, HttpError, isTransientError, lockAccountsStatements, unavailable, type PostgresClient } from "../../kit";
import { GroupCommit } from "../../trading/infra/groupCommit";
import { LOCK_USERS_ORDERS, lockedAt, lockUsersOrdersStatement, marketFactsMany, RISK_FACTS, riskFactsOf, riskFactsStatement, type RiskFacts } from "../../trading/infra/riskContext";
import type { RiskLimits } from "../../trading/risk";
import { outboxInsertStatement, type Enqueued } from "../../trading/infra/outbox";
import * as data from "./data";
import { accountDeleted, decideSubmissions, idempotencyKeyReused, orderEvent, pairKey, type Submission } from "./domain";

/** A submission with the instant past which it must not be committed, on the monotonic clock (performance.now(): a wall-clock step cannot stretch the bound). */
export type TimedSubmission = Submission & { deadline: number };

/**
 * Thrown right before a COMMIT the deadline no longer allows: the transaction is rolled back. `known`
 * (one per submission) holds the answers that do not depend on that COMMIT: a replay of an order an
 * earlier request stored is that order whatever this transaction does.
 */
class DeadlinePassed extends Error {
  constructor(readonly known: (SubmitOutcome | undefined)[]) {
    super("submit deadline passed before COMMIT");
  }
}
/** What the submit transaction EXECUTEs: its first round trip, and the insert sent with COMMIT. */
const SUBMIT_PREPARED = [LOCK_USERS_ORDERS, ...ACCOUNT_LOCKS, RISK_FACTS, data.ORDERS_BY_IDEMPOTENCY_KEYS, data.INSERT_ORDERS, outboxInsertStatement("om_outbox")];
/** SQLSTATEs of statement_timeout (query_canceled) and lock_timeout (lock_not_available). */
const TIMED_OUT = new Set(["57014", "55P03"]);

const deadlinePassed = () =>
  // The client's words, not the configuration's: the variable that sets the deadline is named in the log and the docs, not here.
  unavailable("SUBMIT_DEADLINE_PASSED", "this request placed no order: it could not be committed within the order service's deadline for a submit; retry (under the same Idempotency-Key, a retry answers an order an earlier request placed)", 1);

/** A submission's outcome: the order it created, or the stored order a replay refers to. */
export interface SubmitOutcome {
  row: data.OrderRow;
  replayed: boolean;
}

/**
 * Submissions go through `lanes` group commits, a user always to the same lane (by a hash of the
 * user id), one transaction at a time per lane: the lanes' transactions lock disjoint users, so they
 * run side by side instead of queueing on each other's locks (a round trip's latency, high on a busy
 * host, is then paid by the lanes in parallel), and a user's orders are decided in arrival order.
 */
export class OrderSubmitter {
  private readonly lanes: GroupCommit<TimedSubmission, SubmitOutcome>[];
  /** Told of every committed batch that enqueued events (the outbox relay's wake-up), before its submitters hear. */
  private readonly committed: (enqueued: Enqueued) => void;
  constructor(
    private readonly pg: PostgresClient,
    private readonly redis: () => Redis | undefined,
    private readonly limits: RiskLimits,
    opts: { maxBatch: number; lanes: number; committed?: (enqueued: Enqueued) => void },
  ) {
    this.committed = opts.committed ?? (() => undefined);
    this.lanes = Array.from({ length: opts.lanes }, () => new GroupCommit((subs: TimedSubmission[]) => this.submitBefore(subs), { maxBatch: opts.maxBatch, concurrency: 1, isOutage: isTransientError }));
  }

  /** Decides and stores one submission (batched with the ones waiting beside it); 409 on a reused key. */
  submit(s: TimedSubmission): Promise<SubmitOutcome> {
    let h = 0;
    for (let i = 0; i < s.userId.length; i++) h = (h * 31 + s.userId.charCodeAt(i)) | 0;
    return this.lanes[Math.abs(h) % this.lanes.length].submit(s);
  }

  /**
   * The batch's submissions still within their deadline, decided before the earliest of those; the
   * others refused. A try the deadline ended (rolled back) is made again without the submissions
   * expired by then: the one that ended it does not take down the others, which may still have
   * seconds left. Each retry drops at least the earliest deadline, so it ends.
   */
  private async submitBefore(all: TimedSubmission[]): Promise<(SubmitOutcome | Error)[]> {
    // An answer not set by the end is the deadline's 503, made only then: an Error captures a stack
    // trace, 50 us each in a --cpu-prof of order-management when made for every submission up front.
    const outcomes: (SubmitOutcome | Error | undefined)[] = all.map(() => undefined);
    const answered = () => outcomes.map((o) => o ?? deadlinePassed());
    let pending = all.map((s, i) => ({ s, i }));
    for (let expiredBy = performance.now(); ; ) {
      pending = pending.filter(({ s }) => s.deadline > expiredBy);
      if (pending.length === 0) return answered();
      const deadline = Math.min(...pending.map(({ s }) => s.deadline));
      try {
        const decided = await this.submitBatch(pending.map(({ s }) => s), deadline);
        pending.forEach(({ i }, k) => (outcomes[i] = decided[k]));
        return answered();
      } catch (e) {
        // The check before COMMIT, or a statement or lock timeout set from the deadline: rolled back, never
        // committed. Any other error (a COMMIT whose answer was lost among them) keeps its own answer.
        if (!(e instanceof DeadlinePassed || TIMED_OUT.has((e as { code?: unknown }).code as string))) throw e;
        if (e instanceof DeadlinePassed) {
          // A replay of a stored order is answered with it, not told that nothing was placed.
          pending.forEach(({ i }, k) => e.known[k] && (outcomes[i] = e.known[k]));
          pending = pending.filter((_, k) => !e.known[k]);
        }
        expiredBy = Math.max(performance.now(), deadline);
      }
    }
  }

  private async submitBatch(subs: Submission[], deadline: number): Promise<(SubmitOutcome | Error)[]> {
    // Market facts (last price, kill switch) come from Dragonfly, read while the transaction starts
    // and takes the locks (one round trip less on the path; marketFactsMany never rejects): they
    // need not be under the locks, which only cover what this service writes.
    const marketRead = marketFactsMany(this.redis(), subs.map((s) => ({ userId: s.userId, symbol: s.body.symbol })));
    let enqueued: Enqueued | undefined;
    // One round trip before the decision: BEGIN, the users' locks, then their accounts' rows (kit
    // accounts.ts: a deletion of one waits for this COMMIT, and its sweep cancels what this placed, or
    // it committed first), then (each a statement of its own, so read after the locks were granted)
    // the risk facts, which of the users were deleted (the accounts' tombstones), and the
    // orders already stored under the batch's Idempotency-Keys, all written with literals.
    const pairs = [...new Map(subs.map((s) => [pairKey(s.userId, s.body.symbol), { userId: s.userId, symbol: s.body.symbol }])).values()];
    const keyed = subs.flatMap((s) => (s.idempotencyKey ? [{ userId: s.userId, key: s.idempotencyKey }] : []));
    const priorsSql = data.idempotencyKeysStatement(keyed);
    // Each statement after these two SETs (the same message: PostgreSQL applies them to the rest of it)
    // is cancelled at the time left, a wait for a user's lock included.
    const leftMs = Math.max(1, deadline - performance.now());
    const timeouts = [`SET LOCAL statement_timeout = ${leftMs}`, `SET LOCAL lock_timeout = ${leftMs}`];
    const users = [...new Set(subs.map((s) => s.userId))];
    const [lockAccounts, tombstones] = lockAccountsStatements(users);
    const begin = [...timeouts, lockUsersOrdersStatement(users), lockAccounts, riskFactsStatement(pairs, this.limits.rateWindowMs, this.limits.maxOpenOrders), tombstones, ...(priorsSql ? [priorsSql] : [])];
    const outcomes = await this.pg.transaction(async (_tx, _last, [, , , , factRows, deletedRows, priorRows], commitWith) => {
      const txNow = lockedAt(factRows);
      const market = await marketRead;
      const facts = riskFactsOf(factRows);
      const factsOf = new Map<string, RiskFacts>(pairs.map((p, i) => [pairKey(p.userId, p.symbol), facts[i]]));
      const priors = (priorRows ?? []) as data.OrderRow[];
      const decisions = decideSubmissions(subs, { facts: (u, sym) => factsOf.get(pairKey(u, sym))!, market, priors, deleted: deletedAccountsOf(deletedRows), limits: this.limits, now: Date.now() });

      const fresh: data.NewOrder[] = [];
      decisions.forEach((d, i) => {
        if (d.kind !== "new") return;
        const { body: b, ...s } = subs[i];
        fresh.push({
          orderId: s.orderId, userId: s.userId, clientOrderId: b.clientOrderId ?? s.orderId, idempotencyKey: s.idempotencyKey, requestHash: s.requestHash,
          symbol: b.symbol, side: b.side, type: b.type, timeInForce: b.timeInForce ?? "GTC", quantity: b.quantity, limitPrice: b.limitPrice ?? null,
          status: d.status, rejectReason: d.risk.ok ? null : d.risk.reason, rejectMessage: d.risk.ok ? null : d.risk.message, lastPrice: market[i].lastPrice ?? null,
        });
      });
      const created = new Map(data.newOrderRows(fresh, txNow).map((r) => [r.order_id, r]));
      // The last check of the time, right before the round trip that carries the insert and COMMIT; the
      // insert runs under a statement_timeout of the time left then (PostgreSQL does not time out COMMIT).
      const leftAtCommitMs = Math.floor(deadline - performance.now());
      if (leftAtCommitMs < 1) throw new DeadlinePassed(decisions.map((d) => (d.kind === "replay" && "prior" in d ? { row: d.prior, replayed: true } : undefined)));
      const events = [...created.values()].flatMap((r) => [orderEvent({ ...r, status: "new", reject_reason: null, reject_message: null }), orderEvent(r)]);
      enqueued = await data.insertOrdersAndCommit(commitWith, fresh, events, `SET LOCAL statement_timeout = ${leftAtCommitMs}`);
      return decisions.map((d, i): SubmitOutcome | HttpError => {
        if (d.kind === "conflict") return idempotencyKeyReused();
        if (d.kind === "account_deleted") return accountDeleted(subs[i].userId);
        if (d.kind === "new") return { row: created.get(subs[i].orderId)!, replayed: false };
        return { row: "prior" in d ? d.prior : created.get(subs[d.sameAs].orderId)!, replayed: true };
      });
    }, { begin: begin.join(";\n"), prepared: SUBMIT_PREPARED });
    if (enqueued !== undefined) this.committed(enqueued);
    return outcomes;
  }
}
