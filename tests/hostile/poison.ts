/**
 * Poison Kafka messages for every consumed topic: not JSON, invalid UTF-8, JSON that is not an
 * object, deep nesting, an oversized value, and a valid message of the topic with one field made
 * hostile (wrong types, huge values, malformed or unknown-shaped symbols, missing). Each consumer
 * must set every one of them aside (consumer_dead_letters) and keep consuming: the valid message
 * sent after them is applied, not set aside.
 */
import { randomUUID } from "node:crypto";
import { BUSINESS_TOPICS } from "../../services/src/business/events";
import { TOPICS } from "../../services/src/trading/events";

export interface PoisonMessage {
  name: string;
  value: Buffer | string;
}

/** Consumers of each topic: the platform env var holding the group id, and where its dead letters go. */
export const CONSUMERS: Record<string, Array<{ service: string; groupEnv: string; store: "postgres" | "clickhouse" }>> = {
  [TOPICS.orders]: [
    { service: "trading-engine", groupEnv: "TE_CONSUMER_GROUP", store: "postgres" },
    { service: "compliance-monitor", groupEnv: "CM_CONSUMER_GROUP", store: "postgres" },
    { service: "notification-service", groupEnv: "NOTIFY_CONSUMER_GROUP", store: "postgres" },
    { service: "performance-analytics", groupEnv: "PERF_CONSUMER_GROUP", store: "clickhouse" },
    { service: "ai-chain-analytics", groupEnv: "CHAIN_CONSUMER_GROUP", store: "clickhouse" },
  ],
  [TOPICS.executions]: [
    { service: "order-management", groupEnv: "OM_CONSUMER_GROUP", store: "postgres" },
    { service: "portfolio-manager", groupEnv: "PM_CONSUMER_GROUP", store: "postgres" },
    { service: "compliance-monitor", groupEnv: "CM_CONSUMER_GROUP", store: "postgres" },
    { service: "notification-service", groupEnv: "NOTIFY_CONSUMER_GROUP", store: "postgres" },
    { service: "performance-analytics", groupEnv: "PERF_CONSUMER_GROUP", store: "clickhouse" },
    { service: "ai-chain-analytics", groupEnv: "CHAIN_CONSUMER_GROUP", store: "clickhouse" },
  ],
  [TOPICS.candles]: [
    { service: "trading-engine", groupEnv: "TE_CONSUMER_GROUP", store: "postgres" },
    { service: "data-bridge", groupEnv: "CANDLES_WRITER_GROUP", store: "clickhouse" },
  ],
  [TOPICS.complianceAlerts]: [{ service: "notification-service", groupEnv: "NOTIFY_CONSUMER_GROUP", store: "postgres" }],
  [BUSINESS_TOPICS.payments]: [
    { service: "billing-service", groupEnv: "BILLING_CONSUMER_GROUP", store: "postgres" },
    { service: "revenue-analytics", groupEnv: "REVENUE_CONSUMER_GROUP", store: "postgres" },
    { service: "notification-service", groupEnv: "NOTIFY_CONSUMER_GROUP", store: "postgres" },
  ],
  [BUSINESS_TOPICS.billing]: [
    { service: "revenue-analytics", groupEnv: "REVENUE_CONSUMER_GROUP", store: "postgres" },
    { service: "notification-service", groupEnv: "NOTIFY_CONSUMER_GROUP", store: "postgres" },
  ],
  [BUSINESS_TOPICS.usage]: [{ service: "usage-monitoring", groupEnv: "USAGE_CONSUMER_GROUP", store: "clickhouse" }],
};

/** A valid message of the topic (harmless: unknown users and orders), with the symbol given. */
export function validMessage(topic: string, symbol: string): Record<string, unknown> {
  const userId = randomUUID();
  const ts = Date.now();
  const eventId = randomUUID();
  switch (topic) {
    case TOPICS.orders: {
      const orderId = randomUUID();
      const iso = new Date(ts).toISOString();
      return {
        eventId: `${orderId}:rejected`, type: "order.rejected", ts,
        order: { orderId, clientOrderId: orderId, userId, symbol, side: "buy", type: "market", quantity: "1", timeInForce: "GTC", status: "rejected", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: "TRADING_HALTED", rejectMessage: "trading is halted", lastPrice: null, createdAt: iso, updatedAt: iso },
      };
    }
    case TOPICS.executions:
      return { eventId, type: "order.expired", orderId: randomUUID(), userId, symbol, reason: "IOC", ts };
    case TOPICS.candles: {
      const openTime = Math.floor(ts / 60_000) * 60_000;
      return { symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: "100", high: "101", low: "99", close: "100.5", volume: "10" };
    }
    case TOPICS.complianceAlerts:
      return { alertId: `WASH_TRADE:${eventId}`, rule: "WASH_TRADE", userId, symbol, severity: "low", message: "hostile suite", ts, evidence: [eventId] };
    case BUSINESS_TOPICS.payments:
      return { eventId, type: "payment.failed", intentId: randomUUID(), userId, amount: 100, currency: "usd", reference: null, failureCode: "card_declined", ts };
    case BUSINESS_TOPICS.billing:
      return { eventId, type: "subscription.updated", userId, subscriptionId: randomUUID(), planId: "pro", status: "active", currency: "usd", mrr: 0, ts };
    case BUSINESS_TOPICS.usage:
      return { eventId, ts, userId, apiKeyId: null, route: "orders", method: "GET", status: 200, latencyMs: 1.5 };
    default:
      throw new Error(`no valid message for topic ${topic}`);
  }
}

type Kind = "id" | "enum" | "decimal" | "number" | "float" | "object" | "array" | "symbol";

/** Hostile replacements of one field (raw JSON text), by the kind of value it holds. */
const ANY_POISON: Array<[string, string]> = [
  ["object", '{"$gt":""}'],
  ["bool", "true"],
  ["null", "null"],
];
const KIND_POISON: Record<Kind, Array<[string, string]>> = {
  id: [["number", "42"], ["empty", '""'], ["100k text", JSON.stringify("x".repeat(100_000))], ["array", '["a"]']],
  enum: [["number", "42"], ["hex text", '"0x64"'], ["spaced text", '" 100"'], ["unknown value", '"order.exploded"'], ["object member name", '"constructor"'], ["array", '["a"]']],
  decimal: [["number", "100"], ["huge digits", JSON.stringify("9".repeat(400))], ["exponent", '"1e400"'], ["hex text", '"0x64"'], ["spaced text", '" 100"'], ["negative text", '"-1"'], ["empty", '""'], ["array", '["1"]']],
  // "beyond a double": a literal its double does not carry (kit exact-number.ts), in bounds once parsed (100, an integer).
  number: [["text", '"100"'], ["huge number", "1e309"], ["huge integer", "123456789012345678901234567890"], ["negative", "-1"], ["fraction", "0.5"], ["beyond a double", "100.000000000000000000001"], ["array", "[1]"]],
  float: [["text", '"100"'], ["huge number", "1e309"], ["huge integer", "123456789012345678901234567890"], ["negative", "-1"], ["beyond a double", "1.00000000000000000000001"], ["array", "[1]"]],
  object: [["number", "42"], ["text", '"x"'], ["array", "[1,2]"]],
  array: [["number", "42"], ["text", '"x"'], ["wrong items", "[1,2]"]],
  symbol: [["lowercase", '"btcusdt"'], ["SQL", JSON.stringify("BTC'; DROP TABLE om_orders; --")], ["long", JSON.stringify("A".repeat(64))], ["empty", '""'], ["number", "42"]],
};

/** Fields consumers read, per topic (dotted paths; `?` when optional), with the kind of value each holds. */
const FIELDS: Record<string, Record<string, Kind>> = {
  [TOPICS.orders]: { eventId: "id", type: "enum", order: "object", "order.orderId": "id", "order.userId": "id", "order.symbol": "symbol", "order.side": "enum", "order.quantity": "decimal", "order.status": "enum" },
  [TOPICS.executions]: { eventId: "id", type: "enum", orderId: "id", "symbol?": "symbol", "ts?": "number" },
  [TOPICS.candles]: { symbol: "symbol", interval: "enum", openTime: "number", close: "decimal", high: "decimal", volume: "decimal" },
  [TOPICS.complianceAlerts]: { alertId: "id", userId: "id", severity: "enum", ts: "number", evidence: "array" },
  [BUSINESS_TOPICS.payments]: { eventId: "id", type: "enum", userId: "id", amount: "number", currency: "enum", ts: "number" },
  [BUSINESS_TOPICS.billing]: { eventId: "id", userId: "id", mrr: "number", currency: "enum", ts: "number" },
  [BUSINESS_TOPICS.usage]: { eventId: "id", ts: "number", status: "number", latencyMs: "float", method: "enum" },
};

/** `msg` as JSON text with the value at `path` replaced by the raw JSON `raw` (or removed when raw is undefined). */
function withField(msg: Record<string, unknown>, path: string, raw: string | undefined): string {
  const copy = structuredClone(msg);
  const keys = path.split(".");
  let o = copy as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = keys[keys.length - 1];
  if (raw === undefined) {
    delete o[last];
    return JSON.stringify(copy);
  }
  o[last] = "__HOLE__";
  return JSON.stringify(copy).replace('"__HOLE__"', raw);
}

/** Every poison message of one topic. */
export function poisonFor(topic: string, symbol: string): PoisonMessage[] {
  const valid = validMessage(topic, symbol);
  const out: PoisonMessage[] = [
    { name: "not JSON", value: "{not json" },
    { name: "invalid UTF-8", value: Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0xc0, 0xaf]) },
    // Valid JSON but for one byte inside a string of a field no consumer reads: decoded, it became U+FFFD and was taken.
    { name: "invalid UTF-8 inside a string", value: Buffer.concat([Buffer.from('{"note":"'), Buffer.from([0xff]), Buffer.from(`",${JSON.stringify(valid).slice(1)}`)]) },
    { name: "JSON array", value: "[1,2,3]" },
    { name: "JSON null", value: "null" },
    { name: "JSON string", value: '"hello"' },
    { name: "empty object", value: "{}" },
    { name: "nested 5000", value: "[".repeat(5000) + "]".repeat(5000) },
  ];
  for (const [name, kind] of Object.entries(FIELDS[topic])) {
    const field = name.replace(/\?$/, "");
    if (field === name) out.push({ name: `${field} missing`, value: withField(valid, field, undefined) });
    for (const [label, raw] of [...ANY_POISON, ...KIND_POISON[kind]]) out.push({ name: `${field} ${label}`, value: withField(valid, field, raw) });
  }
  if (topic === TOPICS.candles) out.push(...batchPoison(valid));
  return out;
}

/**
 * Poison in data-bridge's batched candles format (trading/marketdata/candleMessages.ts): a broken
 * envelope (refused whole), and bad bars inside a batch (set aside under the message's offset while
 * the batch's good bars are applied).
 */
function batchPoison(bar: Record<string, unknown>): PoisonMessage[] {
  const t = [bar.openTime, bar.closeTime, bar.open, bar.high, bar.low, bar.close, bar.volume] as [number, number, ...string[]];
  const next = (k: number) => [t[0] + k * 60_000, t[1] + k * 60_000, ...t.slice(2)];
  const batch = (o: Record<string, unknown>) => JSON.stringify({ v: 2, symbol: bar.symbol, interval: bar.interval, bars: [t], ...o });
  return [
    { name: "v unknown version", value: batch({ v: 3 }) },
    { name: "v as text", value: batch({ v: "2" }) },
    { name: "symbol lowercase in a batch", value: batch({ symbol: String(bar.symbol).toLowerCase() }) },
    { name: "interval unknown in a batch", value: batch({ interval: "1y" }) },
    { name: "bars not an array", value: batch({ bars: { 0: t } }) },
    { name: "bars empty", value: batch({ bars: [] }) },
    { name: "bars too many", value: batch({ bars: Array.from({ length: 10_001 }, () => t) }) },
    { name: "bars.0 short tuple", value: batch({ bars: [t.slice(0, 6)] }) },
    { name: "bars.0 every bar bad", value: batch({ bars: [[...t.slice(0, 2), "0x64", ...t.slice(3)], [...t.slice(0, 2), " 1", ...t.slice(3)]] }) },
    { name: "bars.1 one hex price among good bars", value: batch({ bars: [next(-3), [...next(-2).slice(0, 5), "0x64", "1"], next(-1)] }) },
    { name: "bars.1 one object among good bars", value: batch({ bars: [next(-3), { $gt: "" }, next(-1)] }) },
  ];
}

/** Whether the consumer group `groupId` has committed past `offset` on the topic's `partition`: it went through what came before. */
export async function committedPast(admin: { fetchOffsets(o: { groupId: string; topics: string[] }): Promise<Array<{ partitions: Array<{ partition: number; offset: string }> }>> }, groupId: string, topic: string, partition: number, offset: number): Promise<boolean> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return Number(t.partitions.find((x) => x.partition === partition)?.offset ?? -1) > offset;
}
