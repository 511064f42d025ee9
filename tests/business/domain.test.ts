import { describe, expect, it } from "vitest";
import { allocate, formatMoney, MAX_AMOUNT, MoneyError, mulDivRound, parseMinor, sum, toJson } from "../../services/src/business/money";
import { account, assertBalanced, balances, entriesOf, journal, LedgerError, paymentCaptured, refundIssued } from "../../services/src/services/payment-service/domain/ledger";
import { canSettle, canTransition, checkRefund, INTENT_STATUSES, isTerminal, requestHash, statusFromProcessor } from "../../services/src/services/payment-service/domain/intents";
import { reconcileOne } from "../../services/src/services/payment-service/domain/reconcile";
import { addIntervals, periodAt } from "../../services/src/services/billing-service/domain/periods";
import { BillingError, changePlan, finalLines, includedUnits, type Plan, prorationLines, renew, startSubscription, usageLine } from "../../services/src/services/billing-service/domain/subscriptions";
import { afterFailedAttempt, invoiceTotals, statusAfterPayment } from "../../services/src/services/billing-service/domain/invoices";

const utc = (s: string) => new Date(`${s}Z`);

describe("money (integer minor units)", () => {
  it("parses integers only, within range", () => {
    expect(parseMinor(1999)).toBe(1999n);
    expect(parseMinor("1999")).toBe(1999n);
    for (const bad of [19.99, "19.99", "1e3", Number.NaN, Infinity, null, "", " 1", "01", {}, 2 ** 60])
      expect(() => parseMinor(bad, "amount")).toThrow(MoneyError);
    expect(() => parseMinor(-1)).toThrow(/>= 0/);
    expect(() => parseMinor(MAX_AMOUNT + 1n)).toThrow(/<=/);
    try {
      parseMinor("x", "items.0.amount");
    } catch (e) {
      expect((e as MoneyError).field).toBe("items.0.amount");
    }
  });

  it("rounds divisions half away from zero, exactly", () => {
    expect(mulDivRound(100n, 1n, 3n)).toBe(33n);
    expect(mulDivRound(100n, 2n, 3n)).toBe(67n);
    expect(mulDivRound(-100n, 2n, 3n)).toBe(-67n);
    expect(mulDivRound(5n, 1n, 2n)).toBe(3n);
    expect(mulDivRound(-5n, 1n, 2n)).toBe(-3n);
    expect(() => mulDivRound(1n, 1n, 0n)).toThrow();
  });

  it("allocates without creating or losing a cent", () => {
    expect(allocate(100n, [1n, 1n, 1n])).toEqual([34n, 33n, 33n]);
    expect(allocate(-100n, [1n, 1n, 1n])).toEqual([-34n, -33n, -33n]);
    for (const [amt, ws] of [[1001n, [3n, 7n, 11n]], [7n, [1n, 0n, 1n]], [999_999n, [13n, 17n, 19n, 23n]]] as const) {
      const parts = allocate(amt, [...ws]);
      expect(sum(parts)).toBe(amt);
    }
    expect(() => allocate(1n, [0n])).toThrow();
  });

  it("formats for humans and serialises to safe JSON numbers", () => {
    expect(formatMoney(123456n, "usd")).toBe("USD 1,234.56");
    expect(formatMoney(-5n, "eur")).toBe("EUR -0.05");
    expect(formatMoney(1500n, "jpy")).toBe("JPY 1,500");
    expect(toJson(MAX_AMOUNT)).toBe(1e12);
  });
});

describe("double-entry ledger", () => {
  it("every movement is two entries summing to zero; balances are derived", () => {
    const j = journal([...paymentCaptured({ processor: "stripe", userId: "u1", amount: 2900n, currency: "usd", fee: 114n, intentId: "pi1" })]);
    expect(j).toHaveLength(4);
    expect(sum(j.map((e) => e.amount))).toBe(0n);
    const r = journal(refundIssued({ processor: "stripe", userId: "u1", amount: 900n, currency: "usd", refundId: "re1" }));
    const b = balances([...j, ...r]);
    expect(b.get(`${account.processor("stripe")}|usd`)).toBe(2900n - 114n - 900n);
    expect(b.get(`${account.customer("u1")}|usd`)).toBe(-2000n);
    expect(b.get(`${account.fees("stripe")}|usd`)).toBe(114n);
    expect(sum(b.values())).toBe(0n);
  });

  it("rejects zero, negative, self and malformed movements, and unbalanced journals", () => {
    const base = { debit: "processor:p", credit: "customer:u", currency: "usd" as const, memo: "" };
    expect(() => entriesOf({ ...base, amount: 0n })).toThrow(LedgerError);
    expect(() => entriesOf({ ...base, amount: -1n })).toThrow(LedgerError);
    expect(() => entriesOf({ ...base, credit: "processor:p", amount: 1n })).toThrow(/same account/);
    expect(() => entriesOf({ ...base, debit: "cash", amount: 1n })).toThrow(/invalid ledger account/);
    expect(() => journal([])).toThrow();
    expect(() => assertBalanced([{ currency: "usd", amount: 5n }, { currency: "eur", amount: -5n }])).toThrow(/usd/);
  });
});

describe("payment intents", () => {
  it("moves forward only; terminal states stay", () => {
    expect(canTransition("created", "succeeded")).toBe(true);
    expect(canTransition("processing", "succeeded")).toBe(true);
    for (const s of ["succeeded", "failed", "canceled"] as const) {
      expect(isTerminal(s)).toBe(true);
      for (const t of INTENT_STATUSES) expect(canTransition(s, t)).toBe(false);
    }
  });
  it("maps the processor's statuses and rejects unknown ones", () => {
    expect(statusFromProcessor("requires_payment_method")).toBe("failed");
    expect(statusFromProcessor("processing")).toBe("processing");
    expect(() => statusFromProcessor("bogus")).toThrow(/unknown/);
  });
  it("binds an idempotency key to the request body", () => {
    const r = { amount: 100n, currency: "usd" as const, paymentMethod: "pm_card_visa", description: null, reference: null };
    expect(requestHash("u", r)).toBe(requestHash("u", { ...r }));
    expect(requestHash("u", r)).not.toBe(requestHash("u", { ...r, amount: 101n }));
    expect(requestHash("u", r)).not.toBe(requestHash("v", r));
  });
  it("refunds only succeeded payments, never more than was paid", () => {
    expect(checkRefund({ status: "succeeded", amount: 100n, refunded: 40n }, 60n)).toEqual({ ok: true });
    expect(checkRefund({ status: "succeeded", amount: 100n, refunded: 40n }, 61n)).toMatchObject({ ok: false, code: "REFUND_EXCEEDS_PAYMENT" });
    expect(checkRefund({ status: "processing", amount: 100n, refunded: 0n }, 1n)).toMatchObject({ ok: false, code: "INTENT_NOT_SUCCEEDED" });
  });
});

describe("reconciliation decisions", () => {
  const local = { id: "i1", status: "created" as const, amount: 500n, currency: "usd", createdAtMs: 0 };
  const remote = { id: "pi_1", status: "succeeded", amount: 500n, currency: "usd", fee: 0n };
  it("settles what the processor finished while we were down", () => {
    expect(reconcileOne(local, remote, 1000, 60_000)).toMatchObject({ kind: "settle", to: "succeeded" });
    expect(reconcileOne({ ...local, status: "processing" }, { ...remote, status: "requires_payment_method" }, 0, 0)).toMatchObject({ kind: "settle", to: "failed" });
  });
  it("closes intents that never reached the processor only after the grace period", () => {
    expect(reconcileOne(local, undefined, 1000, 60_000).kind).toBe("none");
    expect(reconcileOne(local, undefined, 60_000, 60_000).kind).toBe("never_reached_processor");
  });
  it("reports (does not fix) disagreements", () => {
    expect(reconcileOne(local, { ...remote, amount: 501n }, 0, 0).kind).toBe("mismatch");
    expect(reconcileOne({ ...local, status: "succeeded" }, undefined, 0, 0).kind).toBe("mismatch");
    expect(reconcileOne({ ...local, status: "failed" }, remote, 0, 0).kind).toBe("mismatch");
    expect(reconcileOne({ ...local, status: "succeeded" }, remote, 0, 0).kind).toBe("none");
  });
  it("books what the processor reports of an intent failed by our inference (never_reached_processor), not of one it failed itself", () => {
    const closed = { ...local, status: "failed" as const, failureCode: "never_reached_processor" };
    expect(reconcileOne(closed, remote, 0, 0)).toMatchObject({ kind: "settle", to: "succeeded" });
    expect(reconcileOne(closed, { ...remote, status: "processing" }, 0, 0)).toMatchObject({ kind: "settle", to: "processing" });
    expect(reconcileOne(closed, { ...remote, status: "requires_payment_method" }, 0, 0).kind).toBe("none");
    expect(reconcileOne(closed, undefined, 0, 0).kind).toBe("none");
    expect(reconcileOne({ ...closed, failureCode: "card_declined" }, remote, 0, 0).kind).toBe("mismatch");
    expect([canSettle({ status: "failed", failureCode: "never_reached_processor" }, "succeeded"), canSettle({ status: "failed", failureCode: "never_reached_processor" }, "failed"), canSettle({ status: "failed", failureCode: null }, "succeeded")]).toEqual([true, false, false]);
  });
});

const pro: Plan = { id: "pro", name: "Pro", currency: "usd", amount: 3000n, interval: "month", trialDays: 0, usage: { metric: "api_requests", included: 1000n, blockSize: 100n, blockAmount: 50n } };
const basic: Plan = { id: "basic", name: "Basic", currency: "usd", amount: 1000n, interval: "month", trialDays: 14, usage: null };

describe("billing periods", () => {
  it("keeps the anchor day, clamped to short months", () => {
    const a = utc("2026-01-31T10:00:00");
    expect(addIntervals(a, "month", 1).toISOString()).toBe("2026-02-28T10:00:00.000Z");
    expect(addIntervals(a, "month", 2).toISOString()).toBe("2026-03-31T10:00:00.000Z");
    expect(addIntervals(utc("2024-02-29T00:00:00"), "year", 1).toISOString()).toBe("2025-02-28T00:00:00.000Z");
    const p = periodAt(a, "month", utc("2026-03-01T00:00:00"));
    expect([p.start.toISOString(), p.end.toISOString()]).toEqual(["2026-02-28T10:00:00.000Z", "2026-03-31T10:00:00.000Z"]);
  });
});

describe("subscriptions", () => {
  it("trial bills nothing, then the first full period", () => {
    const now = utc("2026-05-01T00:00:00");
    const { subscription: s, firstLines } = startSubscription(basic, now);
    expect(s.status).toBe("trialing");
    expect(firstLines).toEqual([]);
    expect(s.periodEnd.toISOString()).toBe("2026-05-15T00:00:00.000Z");
    const r = renew(s, basic, 5000n);
    expect(r.lines.map((l) => [l.kind, l.amount])).toEqual([["subscription", 1000n]]); // usage in trial is free
    expect(r.subscription.periodEnd.toISOString()).toBe("2026-06-15T00:00:00.000Z");
  });

  it("without trial, the first period is invoiced at once and usage is billed in arrears per started block", () => {
    const now = utc("2026-05-01T00:00:00");
    const { subscription: s, firstLines } = startSubscription(pro, now);
    expect(s.status).toBe("incomplete");
    expect(firstLines[0].amount).toBe(3000n);
    expect(usageLine(pro, 1000n, s.periodStart, s.periodEnd)).toBeNull();
    expect(usageLine(pro, 1001n, s.periodStart, s.periodEnd)?.amount).toBe(50n);
    expect(usageLine(pro, 1250n, s.periodStart, s.periodEnd)?.amount).toBe(150n);
    const r = renew({ ...s, status: "active" }, pro, 1250n);
    expect(r.lines.map((l) => l.amount)).toEqual([3000n, 150n]);
    expect(renew({ ...s, status: "active", cancelAtPeriodEnd: true }, pro, 0n)).toMatchObject({ lines: [], subscription: { status: "canceled" } });
  });

  it("a paused subscription resumes with a period starting at the renewal, not back-dated over the pause", () => {
    const s = { ...startSubscription(pro, utc("2026-01-10T00:00:00")).subscription, status: "active" as const };
    const at = utc("2026-04-20T12:00:00"); // paused at the period's end (Feb 10), resumed in April
    const r = renew({ ...s, pausedAt: utc("2026-02-10T00:00:00") }, pro, 1250n, at);
    expect(r.subscription).toMatchObject({ status: "active", anchor: at, periodStart: at, periodEnd: utc("2026-05-20T12:00:00"), pausedAt: null });
    // One period in advance from the renewal, and the ended period's usage in arrears, nothing for the pause.
    expect(r.lines.map((l) => [l.kind, l.amount, l.periodStart.toISOString()])).toEqual([["subscription", 3000n, at.toISOString()], ["usage", 150n, s.periodStart.toISOString()]]);
    // Not paused: the next period follows the ended one.
    expect(renew(s, pro, 0n, at).subscription.periodStart).toEqual(s.periodEnd);
  });

  it("prorates a mid-period change to the second, upgrade and downgrade", () => {
    const start = utc("2026-04-01T00:00:00"); // 30-day period
    const s = { ...startSubscription(pro, start).subscription, status: "active" as const };
    const half = utc("2026-04-16T00:00:00");
    const proBasic: Plan = { ...basic, trialDays: 0 };
    const down = changePlan(s, pro, proBasic, half);
    expect(down.lines.map((l) => l.amount)).toEqual([-1500n, 500n]);
    const t = invoiceTotals(down.lines, 0n);
    expect(t).toEqual({ subtotal: -1000n, creditApplied: 0n, amountDue: 0n, creditBalanceAfter: 1000n });
    const next = invoiceTotals([{ amount: 1000n }], t.creditBalanceAfter);
    expect(next.amountDue).toBe(0n);
    const up = prorationLines({ ...s, planId: "basic" }, proBasic, pro, utc("2026-04-21T00:00:00")); // 10 of 30 days left
    expect(up.map((l) => l.amount)).toEqual([-333n, 1000n]);
    expect(() => changePlan(s, pro, { ...basic, currency: "eur" }, half)).toThrow(BillingError);
    expect(() => changePlan(s, pro, pro, half)).toThrow(/already/);
  });
});

describe("usage priced by the plan in force", () => {
  const start = utc("2026-04-01T00:00:00"); // 30-day period
  const s = { ...startSubscription(pro, start).subscription, status: "active" as const };
  const bulk: Plan = { ...pro, id: "bulk", name: "Bulk", usage: { metric: "api_requests", included: 1_000_000n, blockSize: 1n, blockAmount: 1n } };

  it("a plan change invoices the usage so far under the old plan, with its share of the allowance", () => {
    const third = utc("2026-04-11T00:00:00");
    const c = changePlan(s, pro, bulk, third, 1500n); // 1000 included for the period: a third, 333
    expect(c.lines.map((l) => [l.kind, l.amount])).toEqual([["proration", -2000n], ["proration", 2000n], ["usage", 600n]]); // 1167 over: 12 blocks
    expect(c.subscription.usageBilledUntil).toEqual(third);
    // The renewal prices the rest (from the change) by the new plan, with its share.
    const r = renew(c.subscription, bulk, 10n);
    expect(r.lines.map((l) => l.kind)).toEqual(["subscription"]);
    expect(r.subscription.usageBilledUntil).toBeNull();
    const back = renew(changePlan(c.subscription, bulk, pro, third, 0n).subscription, pro, 1000n);
    expect(back.lines.find((l) => l.kind === "usage")).toMatchObject({ periodStart: third, amount: 200n }); // 667 included for 2/3: 333 over, 4 blocks
  });

  it("the shares of a period split between plans never add up to more than one allowance", () => {
    const cuts = ["2026-04-03T07:00:00", "2026-04-09T13:30:00", "2026-04-22T00:00:01"].map(utc);
    const bounds = [start, ...cuts, s.periodEnd];
    const shares = bounds.slice(1).map((end, i) => includedUnits(pro, s, bounds[i], end));
    expect(shares.reduce((a, b) => a + b, 0n)).toBeLessThanOrEqual(1001n); // rounding: at most half a unit each
    expect(includedUnits(pro, s, start, s.periodEnd)).toBe(1000n);
  });

  it("a share of the allowance counts the milliseconds its usage was metered in (was whole seconds)", () => {
    const second = { periodStart: start, periodEnd: new Date(start.getTime() + 1000) };
    const big: Plan = { ...pro, usage: { ...pro.usage!, included: 1_000_000n } };
    // A plan change 250 ms into a one-second period: before, 0 s of 1 s, and none of the allowance.
    expect(includedUnits(big, second, start, new Date(start.getTime() + 250))).toBe(250_000n);
    expect(includedUnits(big, second, new Date(start.getTime() + 250), second.periodEnd)).toBe(750_000n);
    // A 30-day period cut 1.5 s in: a share of 1.5 s (1e9 * 1500 / 2_592_000_000 = 578.7), not 1 s (385.8).
    const huge: Plan = { ...pro, usage: { ...pro.usage!, included: 1_000_000_000n } };
    expect(includedUnits(huge, s, start, new Date(start.getTime() + 1500))).toBe(579n);
  });

  it("ending now invoices the usage so far with the period's whole allowance; a trial's is free", () => {
    const at = utc("2026-04-05T00:00:00");
    expect(finalLines(s, pro, 1250n, at).map((l) => [l.kind, l.amount, l.periodEnd])).toEqual([["usage", 150n, at]]);
    expect(finalLines({ ...s, status: "trialing" }, pro, 1250n, at)).toEqual([]);
    expect(renew({ ...s, cancelAtPeriodEnd: true }, pro, 1250n)).toMatchObject({ subscription: { status: "canceled" }, lines: [{ kind: "usage", amount: 150n }] });
  });
});

describe("invoices and dunning", () => {
  it("applies credit up to the amount due", () => {
    expect(invoiceTotals([{ amount: 3000n }, { amount: 150n }], 500n)).toEqual({ subtotal: 3150n, creditApplied: 500n, amountDue: 2650n, creditBalanceAfter: 0n });
  });
  it("retries on the schedule, then gives up", () => {
    const t = utc("2026-01-01T00:00:00");
    expect(afterFailedAttempt(1, t)).toEqual({ action: "retry", at: utc("2026-01-02T00:00:00") });
    expect(afterFailedAttempt(3, t)).toEqual({ action: "retry", at: utc("2026-01-06T00:00:00") });
    expect(afterFailedAttempt(4, t)).toEqual({ action: "give_up" });
    expect(statusAfterPayment("active", "failed")).toBe("past_due");
    expect(statusAfterPayment("past_due", "paid")).toBe("active");
    expect(statusAfterPayment("past_due", "gave_up")).toBe("unpaid");
    expect(statusAfterPayment("canceled", "paid")).toBe("canceled");
  });
});
