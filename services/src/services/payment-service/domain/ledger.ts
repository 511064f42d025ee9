/**
 * Double-entry ledger. Every movement of money is exactly two entries of opposite sign (debit
 * positive, credit negative) in one currency, so every journal, and the whole ledger, sums to zero.
 * Balances are never stored: they are the sum of an account's entries. PostgreSQL enforces the same
 * rule with a deferred constraint trigger (migration 0340_payments.sql), so a bug here cannot commit an
 * unbalanced journal.
 *
 * Accounts (`kind:owner`):
 *   processor:<name>  asset: money held for us by the card processor
 *   customer:<userId> what the customer has paid us, net of refunds (credit balance)
 *   fees:<name>       expense: the processor's fees
 */
import { type Currency, MAX_AMOUNT } from "../../../business/money";

export interface Movement {
  debit: string;
  credit: string;
  amount: bigint;
  currency: Currency;
  memo: string;
}

export interface Entry {
  account: string;
  currency: Currency;
  /** > 0 debit, < 0 credit. */
  amount: bigint;
  memo: string;
}

const ACCOUNT_RE = /^(processor|customer|fees):[A-Za-z0-9._:@-]{1,128}$/;

export const account = {
  processor: (name: string) => `processor:${name}`,
  customer: (userId: string) => `customer:${userId}`,
  fees: (name: string) => `fees:${name}`,
};

export class LedgerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LedgerError";
  }
}

/** The two entries of one movement, after checking it. */
export function entriesOf(m: Movement): [Entry, Entry] {
  if (m.amount <= 0n || m.amount > MAX_AMOUNT) throw new LedgerError(`movement amount must be in (0, ${MAX_AMOUNT}], got ${m.amount}`);
  if (m.debit === m.credit) throw new LedgerError(`movement debits and credits the same account ${m.debit}`);
  for (const a of [m.debit, m.credit]) if (!ACCOUNT_RE.test(a)) throw new LedgerError(`invalid ledger account ${JSON.stringify(a)}`);
  return [
    { account: m.debit, currency: m.currency, amount: m.amount, memo: m.memo },
    { account: m.credit, currency: m.currency, amount: -m.amount, memo: m.memo },
  ];
}

/** Entries of a journal (one business event); throws unless they balance per currency. */
export function journal(movements: Movement[]): Entry[] {
  if (movements.length === 0) throw new LedgerError("a journal needs at least one movement");
  const entries = movements.flatMap(entriesOf);
  assertBalanced(entries);
  return entries;
}

export function assertBalanced(entries: Pick<Entry, "currency" | "amount">[]): void {
  for (const [currency, total] of totalsByCurrency(entries))
    if (total !== 0n) throw new LedgerError(`journal does not balance in ${currency}: ${total}`);
}

export function totalsByCurrency(entries: Pick<Entry, "currency" | "amount">[]): Map<string, bigint> {
  const totals = new Map<string, bigint>();
  for (const e of entries) totals.set(e.currency, (totals.get(e.currency) ?? 0n) + e.amount);
  return totals;
}

/** Derived balances keyed `account|currency`. */
export function balances(entries: Pick<Entry, "account" | "currency" | "amount">[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const e of entries) {
    const k = `${e.account}|${e.currency}`;
    out.set(k, (out.get(k) ?? 0n) + e.amount);
  }
  return out;
}

/** A captured payment: the processor holds the money, the customer has paid it. */
export function paymentCaptured(p: { processor: string; userId: string; amount: bigint; currency: Currency; fee?: bigint; intentId: string }): Movement[] {
  const moves: Movement[] = [
    { debit: account.processor(p.processor), credit: account.customer(p.userId), amount: p.amount, currency: p.currency, memo: `payment ${p.intentId}` },
  ];
  if (p.fee && p.fee > 0n)
    moves.push({ debit: account.fees(p.processor), credit: account.processor(p.processor), amount: p.fee, currency: p.currency, memo: `fee ${p.intentId}` });
  return moves;
}

/** A refund: money leaves the processor balance back to the customer. */
export function refundIssued(p: { processor: string; userId: string; amount: bigint; currency: Currency; refundId: string }): Movement[] {
  return [{ debit: account.customer(p.userId), credit: account.processor(p.processor), amount: p.amount, currency: p.currency, memo: `refund ${p.refundId}` }];
}

/** A refund that failed after it succeeded: the processor took the money back from the customer's card, and holds it for us again. */
export function refundReversed(p: { processor: string; userId: string; amount: bigint; currency: Currency; refundId: string }): Movement[] {
  return [{ debit: account.processor(p.processor), credit: account.customer(p.userId), amount: p.amount, currency: p.currency, memo: `refund reversed ${p.refundId}` }];
}
