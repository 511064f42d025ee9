/**
 * What a message of each topic must be before any consumer sees it: the fields consumers read, with
 * their types and bounds (the producers' contracts: trading/events.ts, business/events.ts,
 * trading/compliance.ts). `consumeBatches` checks every message against its topic's schema and sets
 * aside in the dead letters, naming the field, those that fail (not JSON, not an object, a wrong
 * type, a value out of bounds, a malformed symbol), so no handler ever casts garbage into its types.
 * Fields no consumer reads are not checked, and unknown fields are kept (a newer producer may add
 * some). `market.candles` is checked by the bar rules data-bridge applies before it publishes
 * (marketdata/barRules.ts: strict decimals, low <= open, close <= high), so its consumers (the
 * trading-engine, data-bridge's ClickHouse writer) never see a bar data-bridge would have refused.
 * Its messages are one bar or a batch of bars (marketdata/candleMessages.ts); every one reaches its
 * consumers as a batch, and the bad bars of a batch are split off (`aside`) while the good ones go on.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { isUtf8 } from "node:buffer";
import { canonicalUserId } from "../../kit/identity";
import { inexactNumberPaths } from "../../kit/request-guards";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { BUSINESS_TOPICS, isRefundEvent } from "../../business/events";
import { CURRENCIES } from "../../business/money";
import { TOPICS } from "../events";
import { checkCandleMessage, INEXACT_NUMBER, type CandleBatch } from "../marketdata/candleMessages";
import { ORDER_STATUSES } from "../orderState";
import { SYMBOL_RE } from "../types";

const Id = Type.String({ minLength: 1, maxLength: 200 });
/** Epoch milliseconds up to the largest Date. */
const Ts = Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 });
const Symbol = Type.String({ pattern: SYMBOL_RE.source });
const Side = Type.Union([Type.Literal("buy"), Type.Literal("sell")]);
/** Plain decimal strings (no exponent, sign or spaces), bounded: what decimal.ts `str` writes. */
const Unsigned = Type.String({ pattern: "^\\d{1,30}(\\.\\d{1,60})?$" });
const Signed = Type.String({ pattern: "^-?\\d{1,30}(\\.\\d{1,60})?$" });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Amount = Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 });
/**
 * A currency the platform books (business/money.ts CURRENCIES, the processor's lower-case codes): a
 * payments.events or billing.events message in any other (missing, `USD`, `xyz`) is set aside naming
 * `currency`. Before, any three letters passed, and billing took a refund told in `xyz` for one in a
 * currency it cannot compare (returned in full). A currency added to CURRENCIES reaches the consumers
 * with the same release as its producers.
 */
const Currency = Type.String({ pattern: `^(${Object.keys(CURRENCIES).join("|")})$` });
const Text = (max: number) => Type.String({ maxLength: max });

const OrderEvent = Type.Object({
  eventId: Id,
  type: Type.Union(ORDER_STATUSES.map((s) => Type.Literal(`order.${s}`))),
  order: Type.Object({
    // An id, not necessarily a uuid: the trading-engine requires one for what it executes, the other
    // consumers record whatever order id they are given.
    orderId: Id,
    clientOrderId: Type.Optional(Text(200)),
    userId: Id,
    symbol: Symbol,
    side: Side,
    type: Type.Union([Type.Literal("market"), Type.Literal("limit")]),
    quantity: Unsigned,
    limitPrice: Type.Optional(Unsigned),
    status: Type.Union(ORDER_STATUSES.map((s) => Type.Literal(s))),
  }),
});

const Fill = Type.Object({ fillId: Id, orderId: Id, userId: Id, symbol: Symbol, side: Side, quantity: Unsigned, price: Unsigned, fee: Signed, ts: Ts });
const ExecutionEnvelope = Type.Object({
  eventId: Id,
  type: Type.Union([Type.Literal("fill"), Type.Literal("order.expired"), Type.Literal("order.rejected"), Type.Literal("order.cancelled")]),
});
const FillExecution = Type.Object({ fill: Fill });
const OutcomeExecution = Type.Object({ orderId: Id, userId: Type.Optional(Id), symbol: Type.Optional(Symbol), reason: Type.Optional(Text(2000)), ts: Type.Optional(Ts) });

const ComplianceAlert = Type.Object({
  alertId: Id,
  rule: Id,
  userId: Id,
  symbol: Text(40),
  severity: Type.Union([Type.Literal("low"), Type.Literal("medium"), Type.Literal("high")]),
  message: Text(10_000),
  ts: Ts,
  evidence: Type.Array(Id, { maxItems: 10_000 }),
  orderId: Type.Optional(Id),
});

export const PaymentEventSchema = Type.Object({
  eventId: Id,
  type: Type.Union([Type.Literal("payment.succeeded"), Type.Literal("payment.failed"), Type.Literal("payment.refunded"), Type.Literal("payment.refund_failed"), Type.Literal("payment.refund_reversed"), Type.Literal("payment.refund_adjusted")]),
  intentId: Id,
  userId: Id,
  amount: Amount,
  currency: Currency,
  reference: Type.Optional(Nullable(Text(500))),
  refundedAmount: Type.Optional(Amount),
  previousRefundedAmount: Type.Optional(Amount),
  paymentCurrency: Type.Optional(Currency),
  refundId: Type.Optional(Id),
  failureCode: Type.Optional(Nullable(Text(200))),
  ts: Ts,
});

export const BillingEventSchema = Type.Object({
  eventId: Id,
  type: Id,
  userId: Id,
  subscriptionId: Id,
  planId: Id,
  status: Id,
  currency: Currency,
  mrr: Amount,
  invoiceId: Type.Optional(Id),
  amountDue: Type.Optional(Amount),
  amountPaid: Type.Optional(Amount),
  attempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  nextAttemptAt: Type.Optional(Nullable(Text(64))),
  ts: Ts,
});

const UsageEvent = Type.Object({
  eventId: Id,
  ts: Ts,
  userId: Nullable(Id),
  apiKeyId: Nullable(Id),
  route: Text(200),
  method: Type.String({ pattern: "^[A-Z]{1,16}$" }),
  status: Type.Integer({ minimum: 100, maximum: 599 }),
  latencyMs: Type.Number({ minimum: 0, maximum: 86_400_000 }),
});

type Check = (v: unknown) => string | undefined;

/** The first failure of `schema` on `v`, as "field: what is wrong". */
function checker(schema: TSchema): Check {
  const compiled: TypeCheck<TSchema> = TypeCompiler.Compile(schema);
  return (v) => {
    if (compiled.Check(v)) return undefined;
    const e = compiled.Errors(v).First();
    const field = (e?.path ?? "").split("/").filter(Boolean).join(".");
    return `${field || "message"}: ${e?.message ?? "invalid"}`;
  };
}

/**
 * What a payments.events message about a refund must carry beyond its schema (session 56, found by
 * producing forged ones straight to the topic, tests/hostile/session-56.test.ts): payment-service writes
 * every refund event with the refund's amount (`refundedAmount`, at least 1: a refund of nothing is
 * none) and every payment.refund_adjusted with the amount it replaces (`previousRefundedAmount`, at
 * least 1), neither past the payment's amount when told in the payment's currency. Before, a consumer
 * met each its own way: revenue-analytics skipped one without `refundedAmount` with a log line (no dead
 * letter, nothing for an operator to see or replay), and counted a refund larger than its payment, or of
 * 0, into `refunded`; billing took an adjustment to 0 as all of a give-back's credit. Now every consumer
 * sets such a message aside naming the field, before its handler.
 */
function refundEventProblem(v: Static<typeof PaymentEventSchema>): string | undefined {
  if (!isRefundEvent(v.type)) return undefined;
  const inPaymentCurrency = v.currency === (v.paymentCurrency ?? v.currency);
  const amounts: Array<[string, number | undefined]> = [["refundedAmount", v.refundedAmount]];
  if (v.type === "payment.refund_adjusted") amounts.push(["previousRefundedAmount", v.previousRefundedAmount]);
  for (const [field, amount] of amounts) {
    if (amount === undefined) return `${field}: required in a ${v.type} event`;
    if (amount < 1) return `${field}: a refund moves at least 1 minor unit`;
    if (inPaymentCurrency && amount > v.amount) return `${field}: more than the payment's amount (${v.amount})`;
  }
  return undefined;
}
const paymentEvent = checker(PaymentEventSchema);

const executionEnvelope = checker(ExecutionEnvelope);
const fillExecution = checker(FillExecution);
const outcomeExecution = checker(OutcomeExecution);
const CHECKS: Record<string, Check> = {
  [TOPICS.orders]: checker(OrderEvent),
  // Envelope first, so a wrong `type` is named as such rather than as a failed union.
  [TOPICS.executions]: (v) => executionEnvelope(v) ?? ((v as { type: string }).type === "fill" ? fillExecution(v) : outcomeExecution(v)),
  [TOPICS.complianceAlerts]: checker(ComplianceAlert),
  [BUSINESS_TOPICS.payments]: (v) => paymentEvent(v) ?? refundEventProblem(v as Static<typeof PaymentEventSchema>),
  [BUSINESS_TOPICS.billing]: checker(BillingEventSchema),
  [BUSINESS_TOPICS.usage]: checker(UsageEvent),
};

/**
 * Every user id a consumer reads (`userId`, `order.userId`, `fill.userId`) that is a UUID, in its
 * canonical spelling (kit `canonicalUserId`: lower case), so a producer's `ABC…` reaches the same
 * positions, halts, locks and rows as `abc…`; whether any was rewritten. Ids that are not UUIDs
 * are left as they are and the message is handled, not set aside: the topics' contracts take any id
 * (tests and tools publish ids such as `marker-…`); no platform user has one, so such a message
 * reaches no user's state, and only the global kill switch covers its orders.
 */
function canonicaliseUserIds(v: Record<string, unknown>): boolean {
  let rewritten = false;
  for (const holder of [v, v.order, v.fill]) {
    if (typeof holder !== "object" || holder === null || Array.isArray(holder)) continue;
    const h = holder as Record<string, unknown>;
    const canonical = canonicalUserId(h.userId);
    if (canonical !== undefined && canonical !== h.userId) {
      h.userId = canonical;
      rewritten = true;
    }
  }
  return rewritten;
}

/**
 * A message of `topic` parsed and checked: its JSON value, or why it can never be applied. A
 * `market.candles` message is always handed on as a CandleBatch (a one-bar message as a batch of
 * one); `aside` says why part of it was refused (its bad bars, named), for which the consumer sets
 * the message aside as received while it applies the rest. User ids are canonicalised (canonicaliseUserIds):
 * `canonical` is then the message re-serialised with them, for handlers that parse the value again.
 */
export function checkMessage(
  topic: string,
  value: string,
  bytes?: Buffer,
): { json: object; canonical?: string; problem?: undefined; aside?: { problem: string } } | { problem: string } {
  // `value` is `bytes` decoded: a byte that is not UTF-8 became U+FFFD, and a string holding it was taken.
  if (bytes && !isUtf8(bytes)) return { problem: "message is not UTF-8 text" };
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return { problem: "message is not JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { problem: "message is not a JSON object" };
  // As in a request body (kit exact-number.ts): a literal its double does not carry (an amount of
  // 99.9999999999999999999 parses to 100, an integer) is not the value its producer meant; the
  // platform's producers (JSON.stringify) never write one. In a candles batch, the bars holding one
  // are set aside like other bad bars (checkCandleMessage), the others applied.
  const inexact = inexactNumberPaths(value);
  if (topic === TOPICS.candles) {
    const c = checkCandleMessage(v as Record<string, unknown>, inexact);
    if (c.problem !== undefined) return { problem: `${topic} message: ${c.problem}` };
    return c.aside ? { json: c.batch, aside: { problem: `${topic} message: ${c.aside.problem}` } } : { json: c.batch };
  }
  if (inexact.length > 0) return { problem: `${topic} message: ${inexact[0].join(".") || "message"}: ${INEXACT_NUMBER}` };
  const problem = CHECKS[topic]?.(v);
  if (problem !== undefined) return { problem: `${topic} message: ${problem}` };
  return canonicaliseUserIds(v as Record<string, unknown>) ? { json: v, canonical: JSON.stringify(v) } : { json: v };
}

/** A checked `market.candles` message's value (checkMessage's `json` for that topic). */
export const candleBatchOf = (json: object): CandleBatch => json as CandleBatch;

/**
 * Why a message of `topic` can never be applied (or, for a candles batch, why part of it was set
 * aside), or undefined when it passes whole (JSON object, topic schema).
 */
export function messageProblem(topic: string, value: string | Buffer): string | undefined {
  const c = typeof value === "string" ? checkMessage(topic, value) : checkMessage(topic, value.toString(), value);
  return c.problem ?? c.aside?.problem;
}
