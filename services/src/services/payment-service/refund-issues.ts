/**
 * payment-service's refunds an operator has to look at (pay_refund_issues, migrations 0484, 0485;
 * listed by GET /refund-issues): `exceeds_payment`, a refund the processor reports succeeded that does
 * not fit into what is left of the payment here (not booked: refund-repo.ts apply and recordForeign
 * decide it under the payment's lock); `not_found`, a succeeded refund the processor's list no longer
 * returns (refund-reconciler.ts recheck); `amount_mismatch` / `currency_mismatch`, the processor's
 * record of our refund (its answer, a lookup, a re-check, a webhook) of another amount or currency
 * than ours (its status not applied: refund-repo.ts matchesProcessor); `charge_mismatch`, a charge's answer
 * of another amount or currency than asked (not booked: payments.ts chargeLocked; migration 0500, one per
 * payment, refundId null). Each is recorded once per refund: the first sighting is
 * logged at error level (ids, amount and status only) and counted in
 * payment_refund_issues_total{kind}; later ones (replays, the next event, the next re-check) only
 * count `seen` and move `last_seen_at`. An operator closes one (POST /refund-issues/:id/resolve:
 * who, how signed in, and a note; migration 0486), and that close stands: seen again, it is only
 * counted; one the service resolved (its condition over) is reopened when seen again. A mismatch issue's
 * pending refund is settled by an operator from the processor's record (refund-issue-settle.ts, closeIn
 * with `settled`: migration 0492). A refund made at the processor in another currency than its payment is
 * a `currency_mismatch` issue with refundId null (refund-repo.ts recordForeignMismatch). Resolved ones are
 * deleted PAYMENT_REFUND_ISSUE_RETENTION_DAYS after they were resolved (deleteResolvedPastRetention).
 */
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import { deleteOlderThanDays, type Identity, type PostgresClient, type Queryable } from "../../kit";
import { toJson } from "../../business/money";
import type { RefundMismatch } from "./domain/refund-status";

/** `charge_mismatch`: not a refund's, a charge's: the processor answered our charge with another amount or currency (migration 0500). */
export type RefundIssueKind = "exceeds_payment" | "not_found" | RefundMismatch | "charge_mismatch";

export interface RefundIssue {
  kind: RefundIssueKind;
  intentId: string;
  /** Our refund (null: one made at the processor that was not recorded). */
  refundId: string | null;
  processorRefundId: string | null;
  amount: bigint;
  /** The processor's status of it as reported (null: not found there). */
  processorStatus: string | null;
  /** The processor's amount and currency of it, when they are not ours (the mismatch kinds). */
  processorAmount?: bigint | null;
  processorCurrency?: string | null;
  /** The processor's PaymentIntent (charge_mismatch). */
  processorIntentId?: string | null;
}

export interface IssueRow {
  issue_id: string;
  kind: RefundIssueKind;
  intent_id: string;
  refund_id: string | null;
  processor_refund_id: string | null;
  amount: string;
  processor_status: string | null;
  processor_amount: string | null;
  processor_currency: string | null;
  first_seen_at: Date;
  last_seen_at: Date;
  seen: number;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolved_auth_method: Identity["authMethod"] | null;
  resolution_note: string | null;
  settled_status: string | null;
  processor_intent_id: string | null;
}

const COLUMNS = `issue_id, kind, intent_id, refund_id, processor_refund_id, amount::text, processor_status, processor_amount::text, processor_currency,
                 first_seen_at, last_seen_at, seen, resolved_at, resolved_by, resolved_auth_method, resolution_note, settled_status, processor_intent_id`;

/** The API shape of an issue (GET /refund-issues, the resolve route's answer). */
function issueView(r: IssueRow) {
  return {
    id: r.issue_id,
    kind: r.kind,
    intentId: r.intent_id,
    refundId: r.refund_id,
    processorRefundId: r.processor_refund_id,
    amount: toJson(BigInt(r.amount)),
    processorStatus: r.processor_status,
    processorAmount: r.processor_amount === null ? null : toJson(BigInt(r.processor_amount)),
    processorCurrency: r.processor_currency,
    firstSeenAt: r.first_seen_at.toISOString(),
    lastSeenAt: r.last_seen_at.toISOString(),
    seen: r.seen,
    resolvedAt: r.resolved_at?.toISOString() ?? null,
    resolvedBy: r.resolved_by,
    resolvedAuthMethod: r.resolved_auth_method,
    resolutionNote: r.resolution_note,
    settledStatus: r.settled_status,
    processorIntentId: r.processor_intent_id,
  };
}
export type RefundIssueView = ReturnType<typeof issueView>;

const MESSAGES: Record<RefundIssueKind, string> = {
  exceeds_payment: "refund reported succeeded by the processor does not fit into what is left of the payment: not booked; needs an operator (GET /refund-issues)",
  not_found: "succeeded refund not returned by the processor's list of the payment's refunds; needs an operator (GET /refund-issues)",
  amount_mismatch: "the processor reports our refund with another amount than ours: its status not applied (nothing booked, released nor reversed); needs an operator (GET /refund-issues)",
  currency_mismatch: "the processor reports our refund in another currency than ours: its status not applied (nothing booked, released nor reversed); needs an operator (GET /refund-issues)",
  charge_mismatch: "the processor answered our charge with another amount or currency than we asked: not booked (the payment stays open); needs an operator (GET /refund-issues)",
};

/** A refund made at the processor (its dashboard: none of ours, refundId null) that cannot be booked (refund-repo.ts recordForeignMismatch). */
const FOREIGN_MESSAGES: Partial<Record<RefundIssueKind, string>> = {
  amount_mismatch: "the processor reports a refund made there (its dashboard, not one of ours) of no amount a refund of the payment can have: not booked; needs an operator (GET /refund-issues)",
  currency_mismatch: "the processor reports a refund made there (its dashboard, not one of ours) in another currency than the payment's: not booked; needs an operator (GET /refund-issues)",
};

/** The processor's amount and currency as stored: an amount that is none (e.g. a text in a signed event) is null; a currency at most 16 characters (an operator's to read). */
function processorFields(amount: bigint | null | undefined, currency: string | null | undefined) {
  return { processorAmount: amount === undefined || amount === null || amount < 0n ? null : amount, processorCurrency: currency?.slice(0, 16) ?? null };
}

/** One issue per kind and refund: ours by its id, one made at the processor (not recorded) by its processor id; a charge's per payment. */
const issueKey = (kind: RefundIssueKind, i: Pick<RefundIssue, "refundId" | "processorRefundId"> & { intentId?: string }) =>
  kind === "charge_mismatch" ? `${kind}:${i.intentId}` : `${kind}:${i.refundId ?? `processor/${i.processorRefundId}`}`;

export class RefundIssues {
  constructor(
    private readonly pg: PostgresClient,
    private readonly log: Logger,
    private readonly counted?: Counter<"kind">,
  ) {}

  /** Records the issue in `c` (once per kind and refund); true when it is new (then logged and counted). */
  async record(c: Queryable, i: RefundIssue): Promise<boolean> {
    const key = issueKey(i.kind, i);
    const { processorAmount, processorCurrency } = processorFields(i.processorAmount, i.processorCurrency);
    const { rows } = await c.query<{ fresh: boolean }>(
      `INSERT INTO pay_refund_issues (issue_key, kind, intent_id, refund_id, processor_refund_id, amount, processor_status, processor_amount, processor_currency, processor_intent_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
       ON CONFLICT (issue_key) DO UPDATE SET seen = pay_refund_issues.seen + 1, last_seen_at = now(),
              resolved_at = CASE WHEN pay_refund_issues.resolved_by IS NULL THEN NULL ELSE pay_refund_issues.resolved_at END,
              processor_status = EXCLUDED.processor_status, processor_amount = EXCLUDED.processor_amount, processor_currency = EXCLUDED.processor_currency
       RETURNING (xmax = 0) AS fresh`,
      [key, i.kind, i.intentId, i.refundId, i.processorRefundId, i.amount.toString(), i.processorStatus, processorAmount?.toString() ?? null, processorCurrency, i.processorIntentId ?? null],
    );
    const fresh = rows[0].fresh;
    if (fresh) {
      this.counted?.inc({ kind: i.kind });
      const fields = { kind: i.kind, intentId: i.intentId, refundId: i.refundId, processorRefundId: i.processorRefundId, ...(i.processorIntentId ? { processorIntentId: i.processorIntentId } : {}), amount: toJson(i.amount), processorStatus: i.processorStatus };
      this.log.error(i.kind.endsWith("_mismatch") ? { ...fields, processorAmount: processorAmount === null ? null : toJson(processorAmount), processorCurrency } : fields, (i.refundId === null && FOREIGN_MESSAGES[i.kind]) || MESSAGES[i.kind]);
    }
    return fresh;
  }

  /**
   * The refund's issue of `kinds` is over (a re-check found it again; one past the payment failed at the
   * processor after all, so no money went; its processor record matches ours now): resolved, still
   * listed with `resolvedAt`.
   */
  async resolve(c: Queryable, kinds: RefundIssueKind | RefundIssueKind[], of: Pick<RefundIssue, "refundId" | "processorRefundId"> & { intentId?: string }): Promise<void> {
    const keys = (Array.isArray(kinds) ? kinds : [kinds]).map((k) => issueKey(k, of));
    await c.query("UPDATE pay_refund_issues SET resolved_at = now() WHERE issue_key = ANY($1::text[]) AND resolved_at IS NULL", [keys]);
  }

  /** The issues, newest first: open ones only unless `all`. */
  async list(p: { all: boolean; limit: number }): Promise<RefundIssueView[]> {
    const { rows } = await this.pg.query<IssueRow>(`SELECT ${COLUMNS} FROM pay_refund_issues WHERE $1 OR resolved_at IS NULL ORDER BY first_seen_at DESC, issue_key LIMIT $2`, [p.all, p.limit]);
    return rows.map(issueView);
  }

  /**
   * An operator closes the open issue `issueId` with a note (who and how they signed in are recorded;
   * the note is not logged: it is free text). Answers the issue, `not_found`, or `resolved` (it was
   * resolved already, by an operator or the service: the one closing it first wins).
   */
  async close(issueId: string, by: Pick<Identity, "userId" | "authMethod">, note: string): Promise<RefundIssueView | "not_found" | "resolved"> {
    const v = await this.closeIn(this.pg, issueId, by, note);
    if (!v) return (await this.byId(issueId)) ? "resolved" : "not_found";
    this.logClosed(v, by);
    return v;
  }

  /** The issue `issueId` as stored (undefined: none), in `c` when given; locked with `forUpdate`. */
  async byId(issueId: string, c: Queryable = this.pg, forUpdate = false): Promise<IssueRow | undefined> {
    return (await c.query<IssueRow>(`SELECT ${COLUMNS} FROM pay_refund_issues WHERE issue_id = $1${forUpdate ? " FOR UPDATE" : ""}`, [issueId])).rows[0];
  }

  /**
   * Closes the open issue `issueId` in `c` as an operator (who, how signed in, the note; the note not
   * logged): undefined when it is not open. `settled`: the processor's final record an operator's settle
   * applied (refund-issue-settle.ts), kept as the issue's processor status, amount and currency. Logs
   * nothing: the caller logs the close (logClosed) once `c`'s transaction committed.
   */
  async closeIn(c: Queryable, issueId: string, by: Pick<Identity, "userId" | "authMethod">, note: string, settled?: { status: string; amount: bigint; currency: string }): Promise<RefundIssueView | undefined> {
    const p = processorFields(settled?.amount, settled?.currency);
    const { rows } = await c.query<IssueRow>(
      `UPDATE pay_refund_issues SET resolved_at = now(), resolved_by = $2, resolved_auth_method = $3, resolution_note = $4, settled_status = $5,
              processor_status = coalesce($5, processor_status), processor_amount = CASE WHEN $5::text IS NULL THEN processor_amount ELSE $6 END,
              processor_currency = CASE WHEN $5::text IS NULL THEN processor_currency ELSE $7 END
        WHERE issue_id = $1 AND resolved_at IS NULL RETURNING ${COLUMNS}`,
      [issueId, by.userId, by.authMethod, note, settled?.status ?? null, p.processorAmount?.toString() ?? null, p.processorCurrency],
    );
    return rows[0] ? issueView(rows[0]) : undefined;
  }

  /** Logs an operator's close (closeIn) once it is committed: a log line of a rolled-back close would claim what never happened. */
  logClosed(v: RefundIssueView, by: Pick<Identity, "userId" | "authMethod">): void {
    const who = { issueId: v.id, kind: v.kind, intentId: v.intentId, refundId: v.refundId, resolvedBy: by.userId, authMethod: by.authMethod };
    if (v.settledStatus) this.log.info({ ...who, settledStatus: v.settledStatus, amount: v.amount, processorAmount: v.processorAmount, processorCurrency: v.processorCurrency }, "refund issue settled by an operator from the processor's record");
    else this.log.info(who, "refund issue closed by an operator");
  }

  /** Issues resolved more than `days` ago, at most `batch` a pass, oldest first (the kit's PeriodicDelete); open ones are kept. */
  deleteResolvedPastRetention(days: number, batch: number): Promise<number> {
    return deleteOlderThanDays(this.pg, { table: "pay_refund_issues", key: "issue_key", at: "resolved_at" }, days, batch);
  }
}
