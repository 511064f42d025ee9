/**
 * One user, one spelling of their id (kit identity.ts `canonicalUserId`): a UUID in lower case, as
 * PostgreSQL prints users.id. Where an id enters a service:
 *   - identity headers (the gateway's, or an internal peer acting for a user): canonicalised;
 *   - a token's `sub`: refused unless canonical (user-management never signs another spelling);
 *   - an API-key identity (user-management's answer, Dragonfly's copy): canonicalised;
 *   - a Kafka message's `userId`, `order.userId`, `fill.userId`: canonicalised before any consumer
 *     reads it, in the parsed JSON and in the value handlers parse again.
 * (Route parameters and bodies naming a user are refused unless canonical: UserIdSchema, checked
 * end to end in tests/trading/user-id-spelling.test.ts.)
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BUSINESS_TOPICS } from "../../services/src/business/events";
import { canonicalUserId, identityOf, userPartitionKey, isCanonicalUserId, jwtKey, signAccessToken, TokenError, verifyAccessToken } from "../../services/src/kit";
import { parseApiKeyIdentity } from "../../services/src/services/user-management/api-keys";
import { TOPICS } from "../../services/src/trading/events";
import { checkMessage } from "../../services/src/trading/infra/topicSchemas";
import { scopesIn } from "../../services/src/services/trading-engine/halts";
import { cancelledEvent, fillEvent, outcomeEvent } from "../../services/src/services/trading-engine/messages";

const requestWith = (headers: Record<string, string>) => ({ headers }) as Parameters<typeof identityOf>[0];

describe("user id spelling", () => {
  it("canonicalUserId lower-cases a UUID in any case and refuses anything else", () => {
    const id = randomUUID();
    expect(canonicalUserId(id)).toBe(id);
    expect(canonicalUserId(id.toUpperCase())).toBe(id);
    expect(canonicalUserId(id.slice(0, 9).toUpperCase() + id.slice(9))).toBe(id);
    for (const bad of [`urn:uuid:${id}`, `{${id}}`, ` ${id}`, `${id}\n`, id.replace(/-/g, ""), "alice", "", 42, null, undefined])
      expect(canonicalUserId(bad), JSON.stringify(bad)).toBeUndefined();
    expect(isCanonicalUserId(id)).toBe(true);
    expect(isCanonicalUserId(id.toUpperCase())).toBe(false);
  });

  it("identity headers in upper case name the same user, never a second one", () => {
    const id = randomUUID();
    const who = identityOf(requestWith({ "x-user-id": id.toUpperCase(), "x-user-role": "trader", "x-auth-method": "jwt" }));
    expect(who?.userId).toBe(id);
    expect(identityOf(requestWith({ "x-user-id": `urn:uuid:${id}`, "x-user-role": "trader", "x-auth-method": "jwt" }))).toBeUndefined();
  });

  it("a token whose subject is not spelled canonically is refused", async () => {
    const key = jwtKey(randomBytes(32).toString("hex"));
    const id = randomUUID();
    expect((await verifyAccessToken(key, await signAccessToken(key, { userId: id, role: "trader" }, 60), 900)).userId).toBe(id);
    const upper = await signAccessToken(key, { userId: id.toUpperCase(), role: "trader" }, 60);
    await expect(verifyAccessToken(key, upper, 900)).rejects.toBeInstanceOf(TokenError);
    await expect(verifyAccessToken(key, await signAccessToken(key, { userId: "alice", role: "trader" }, 60), 900)).rejects.toBeInstanceOf(TokenError);
  });

  it("an API-key identity carries the canonical id", () => {
    const id = randomUUID();
    const parsed = parseApiKeyIdentity({ userId: id.toUpperCase(), role: "trader", apiKeyId: randomUUID(), scopes: ["read"], expiresAt: null });
    expect(parsed?.userId).toBe(id);
    expect(parseApiKeyIdentity({ userId: "not-a-uuid", role: "trader", apiKeyId: randomUUID(), scopes: ["read"], expiresAt: null })).toBeUndefined();
  });

  it("Kafka messages reach their consumers with the user id canonical", () => {
    const id = randomUUID();
    const UP = id.toUpperCase();
    const ts = Date.now();
    const order = { orderId: randomUUID(), userId: UP, symbol: "BTCUSDT", side: "buy", type: "market", quantity: "1", status: "accepted" };
    const cases: Array<[string, object, (j: any) => unknown]> = [
      [TOPICS.orders, { eventId: randomUUID(), type: "order.accepted", order }, (j) => j.order.userId],
      [TOPICS.executions, { eventId: randomUUID(), type: "fill", fill: { fillId: randomUUID(), orderId: randomUUID(), userId: UP, symbol: "BTCUSDT", side: "buy", quantity: "1", price: "100", fee: "0", ts } }, (j) => j.fill.userId],
      [TOPICS.executions, { eventId: randomUUID(), type: "order.expired", orderId: randomUUID(), userId: UP, symbol: "BTCUSDT", reason: "IOC", ts }, (j) => j.userId],
      [BUSINESS_TOPICS.payments, { eventId: randomUUID(), type: "payment.failed", intentId: randomUUID(), userId: UP, amount: 100, currency: "usd", reference: null, failureCode: "card_declined", ts }, (j) => j.userId],
    ];
    for (const [topic, msg, userIdOf] of cases) {
      const checked = checkMessage(topic, JSON.stringify(msg));
      if (checked.problem !== undefined) throw new Error(`${topic}: ${checked.problem}`);
      expect(userIdOf(checked.json), topic).toBe(id);
      // Handlers that parse the value again (order-management, portfolio-manager...) read it too.
      expect(userIdOf(JSON.parse(checked.canonical ?? "{}")), topic).toBe(id);
    }
    // Already canonical, or not a UUID (the contracts take any id): passed on as sent.
    for (const userId of [id, "user-A"]) {
      const checked = checkMessage(TOPICS.orders, JSON.stringify({ eventId: randomUUID(), type: "order.accepted", order: { ...order, userId } }));
      if (checked.problem !== undefined) throw new Error(checked.problem);
      expect(checked.canonical).toBeUndefined();
      expect((checked.json as { order: { userId: string } }).order.userId).toBe(userId);
    }
  });

  it("the engine's kill-switch scopes cover an owner by the canonical id; an id that is no UUID only by `global`", () => {
    const id = randomUUID();
    const halted = scopesIn([{ scope: `user:${id}`, state: "halted" }, { scope: "user:alice", state: "halted" }], "halted");
    expect(halted(id)).toBe(true);
    expect(halted(id.toUpperCase())).toBe(true);
    expect(halted(randomUUID())).toBe(false);
    // trading_states refuses such a scope; were one read, it names no user (the old code lower-cased
    // any id, so "ALICE" matched "user:alice").
    expect(halted("ALICE")).toBe(false);
    expect(halted("alice")).toBe(false);
    expect(scopesIn([{ scope: "global", state: "halted" }], "halted")("alice")).toBe(true);
    expect(scopesIn([{ scope: `user:${id}`, state: "reduce_only" }], "halted")(id)).toBe(false);
  });

  it("a message keyed by user is keyed by the canonical id, so one user's messages share a partition", () => {
    const id = randomUUID();
    expect(userPartitionKey(id.toUpperCase())).toBe(id);
    expect(userPartitionKey(id)).toBe(id);
    // Not a UUID: kept as spelled (the topic contracts take any id).
    expect(userPartitionKey("Marker-1")).toBe("Marker-1");
    const order = { orderId: randomUUID(), userId: id.toUpperCase(), symbol: "BTCUSDT", side: "buy" as const, type: "market" as const, quantity: "1" };
    const fill = { fillId: `${order.orderId}:1`, orderId: order.orderId, userId: id.toUpperCase(), symbol: "BTCUSDT", side: "buy" as const, quantity: "1", price: "100", fee: "0", liquidity: "taker" as const, ts: Date.now() };
    // The trading-engine's trading.executions events (the key of the old code was the order's spelling).
    expect(fillEvent(fill).key).toBe(id);
    expect(outcomeEvent(order, "order.expired", "IOC").key).toBe(id);
    expect(cancelledEvent(order, "1", "cancelled by user").key).toBe(id);
  });
});
