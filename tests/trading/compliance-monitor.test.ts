/**
 * compliance-monitor on real PostgreSQL and Kafka: its rule state neither drifts when a transaction
 * is rolled back and the event evaluated again, nor forgets positions across a restart.
 *
 * - Failures are injected once (a sequence is not rolled back) at the two places a batch can fail
 *   after the rules ran: the alert insert (a BEFORE trigger on cm_alerts) and COMMIT (a deferred
 *   constraint trigger on cm_audit). SQLSTATE 40001 is an outage (kafkajs delivers the batch again),
 *   P0001 is not (the batch is retried message by message): either way the event is evaluated twice,
 *   and must count once.
 * - A restart with nothing to replay (COMPLIANCE_REPLAY_WINDOW_MS=0: the last fill is older than the
 *   window) still knows the position: cm_positions, moved once per fill id by a trigger on cm_audit.
 * - Migration 0199 backfills the positions from an audit trail recorded before it.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg, type KafkaJs } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, loadMigrationFiles, POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import complianceMonitor from "../../services/src/services/compliance-monitor";
import { ComplianceMonitor, type OrderEvent } from "../../services/src/trading/compliance";
import type { Fill } from "../../services/src/trading/types";
import { waitUntil } from "./e2e-helpers";

const srv = useServers("postgres", "kafka");
let pool: InstanceType<typeof pg.Pool>;
let producer: KafkaJs.Producer;
let svc: Service<any> | undefined;
const group = `cm-${randomUUID()}`;
const SYMBOL = "BTCUSDT";
const T0 = Date.parse("2024-01-02T10:00:00Z");

const start = (env: Record<string, string> = {}) =>
  createService(complianceMonitor, {
    env: { ...srv.env, LOG_LEVEL: "silent", CM_CONSUMER_GROUP: group, COMPLIANCE_POSITION_LIMIT: "1000", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", ...env },
    defaultMetrics: false,
  }).then(async (s) => {
    await s.app.ready();
    return s;
  });

const fillMsg = (userId: string, fillId: string, side: "buy" | "sell", quantity: string, ts: number, eventId = fillId, price = side === "buy" ? "100" : "150") => ({
  topic: "trading.executions",
  key: userId,
  value: { eventId, type: "fill", fill: { fillId, orderId: `o-${fillId}`, userId, symbol: SYMBOL, side, quantity, price, fee: "0", liquidity: "taker", ts } },
});
const orderMsg = (userId: string, eventId: string, status: "accepted" | "cancelled", orderId: string, ts: number) => ({
  topic: "trading.orders",
  key: userId,
  value: {
    eventId, type: `order.${status}`, ts,
    order: { orderId, clientOrderId: orderId, userId, symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "100", lastPrice: "100", status },
  },
});
type Msg = { topic: string; key: string; value: { eventId: string } };

/** Sends the messages in order (one partition per topic and user) and waits until all are audited. */
async function deliver(msgs: Msg[]): Promise<void> {
  for (const topic of new Set(msgs.map((m) => m.topic)))
    await producer.send({ topic, messages: msgs.filter((m) => m.topic === topic).map((m) => ({ key: m.key, value: JSON.stringify(m.value) })) });
  const ids = msgs.map((m) => m.value.eventId);
  await waitUntil("events audited", async () => (await pool.query("SELECT count(DISTINCT event_id)::int AS n FROM cm_audit WHERE event_id = ANY($1)", [ids])).rows[0].n === new Set(ids).size, 60_000);
}

const alertsOf = async (userId: string) => (await pool.query<{ alert_id: string }>("SELECT alert_id FROM cm_alerts WHERE user_id = $1 ORDER BY alert_id", [userId])).rows.map((r) => r.alert_id);
const positionOf = async (userId: string) => (await pool.query<{ q: string }>("SELECT quantity::text AS q FROM cm_positions WHERE user_id = $1 AND symbol = $2", [userId, SYMBOL])).rows[0]?.q;

const backfillUser = `cm-backfill-${randomUUID()}`;
let failures = 0;
/** The next statement of `where` about event `eventId` fails once with `sqlstate`. */
async function failOnce(where: "alert insert" | "commit", eventId: string, sqlstate: string): Promise<() => Promise<number>> {
  const seq = `cm_test_fail_${++failures}`;
  await pool.query(`CREATE SEQUENCE ${seq}`);
  if (where === "alert insert")
    await pool.query(`CREATE TRIGGER ${seq} BEFORE INSERT ON cm_alerts FOR EACH ROW WHEN (NEW.alert_id LIKE '%:${eventId}') EXECUTE FUNCTION cm_test_fail_once('${seq}', '${sqlstate}')`);
  else
    await pool.query(`CREATE CONSTRAINT TRIGGER ${seq} AFTER INSERT ON cm_audit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.event_id = '${eventId}') EXECUTE FUNCTION cm_test_fail_once('${seq}', '${sqlstate}')`);
  // How often the trigger fired (the sequence is not rolled back with the failed attempt).
  return async () => Number((await pool.query(`SELECT last_value, is_called FROM ${seq}`)).rows.map((r) => (r.is_called ? r.last_value : 0))[0]);
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 4 });
  // Migrations before 0199, an audit trail recorded by the previous release, then 0199.
  const all = loadMigrationFiles(POSTGRES_MIGRATIONS_DIR);
  await runPostgresMigrations(pool, { files: all.filter((f) => f.file < "0199") });
  const audit = (eventId: string, side: string, quantity: string, fillId = eventId) =>
    pool.query("INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload) VALUES ($1, 'trading.executions', 'fill', $2, $3, $4)", [
      eventId, backfillUser, SYMBOL, JSON.stringify({ source: "fill", fill: { fillId, orderId: "o", userId: backfillUser, symbol: SYMBOL, side, quantity, price: "100", fee: "0", liquidity: "taker", ts: T0 } }),
    ]);
  await audit(`${backfillUser}:b1`, "buy", "900.5");
  await audit(`${backfillUser}:b1-again`, "buy", "900.5", `${backfillUser}:b1`); // the same fill under a second event id
  await audit(`${backfillUser}:s1`, "sell", "100");
  await runPostgresMigrations(pool, { files: all });
  await pool.query(`CREATE FUNCTION cm_test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval(TG_ARGV[0]::regclass) = 1 THEN RAISE EXCEPTION 'injected failure' USING ERRCODE = TG_ARGV[1]; END IF;
      RETURN NEW;
    END $$`);
  const kafka = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
}, 240_000);

afterAll(async () => {
  await svc?.close();
  await producer?.disconnect();
  await pool?.end();
});

describe("compliance-monitor state", () => {
  it("migration 0199 backfills positions from the audit trail recorded before it, once per fill id", async () => {
    expect(Number(await positionOf(backfillUser))).toBe(800.5);
  });

  it("a position alert whose insert failed once is raised once, and the position is not doubled in memory", async () => {
    svc = await start();
    const user = `cm-pos-${randomUUID()}`;
    const fired = await failOnce("alert insert", `${user}:b2`, "40001"); // an outage: the batch comes again
    await deliver([fillMsg(user, `${user}:b1`, "buy", "600", T0), fillMsg(user, `${user}:b2`, "buy", "600", T0 + 1)]);
    expect(await fired()).toBeGreaterThanOrEqual(1);
    expect(await alertsOf(user)).toEqual([`POSITION_LIMIT:${user}:b2`]);
    // Back to 900: under the limit (a monitor that counted b2 twice would see 1,500).
    await deliver([fillMsg(user, `${user}:s1`, "sell", "300", T0 + 2)]);
    expect(await alertsOf(user)).toEqual([`POSITION_LIMIT:${user}:b2`]);
    expect(await positionOf(user)).toBe("900");
    // A redelivered fill, and the same fill under another event id, move nothing.
    await deliver([fillMsg(user, `${user}:s1`, "sell", "300", T0 + 2), fillMsg(user, `${user}:s1`, "sell", "300", T0 + 2, `${user}:s1:again`)]);
    expect(await positionOf(user)).toBe("900");
  }, 120_000);

  it("a cancel whose COMMIT failed once counts once in the cancel ratio", async () => {
    const user = `cm-cancel-${randomUUID()}`;
    const fired = await failOnce("commit", `${user}:c7`, "P0001"); // not an outage: retried message by message
    const placed = Array.from({ length: 10 }, (_, i) => orderMsg(user, `${user}:p${i}`, "accepted", `${user}-o${i}`, T0 + i));
    const cancels = Array.from({ length: 8 }, (_, i) => orderMsg(user, `${user}:c${i}`, "cancelled", `${user}-o${i}`, T0 + 100 + i));
    await deliver([...placed, ...cancels]);
    expect(await fired()).toBeGreaterThanOrEqual(1);
    // 8 cancels for 10 orders: under 0.9 (a monitor that counted c7 twice alerts at 9/10).
    expect(await alertsOf(user)).toEqual([]);
    // The ninth cancel reaches 0.9: the rule still fires, once.
    await deliver([orderMsg(user, `${user}:c8`, "cancelled", `${user}-o8`, T0 + 108)]);
    expect(await alertsOf(user)).toEqual([`EXCESSIVE_CANCEL_RATIO:${user}:c8`]);
  }, 120_000);

  it("a restart with nothing left to replay still knows the position: buy 900, restart, buy 200 alerts at 1,100", async () => {
    const user = `cm-restart-${randomUUID()}`;
    await deliver([fillMsg(user, `${user}:b1`, "buy", "900", T0)]);
    expect(await alertsOf(user)).toEqual([]);
    await svc!.close();
    // Replay window 0: as if the restart came more than COMPLIANCE_REPLAY_WINDOW_MS after the fill.
    svc = await start({ COMPLIANCE_REPLAY_WINDOW_MS: "0" });
    await deliver([fillMsg(user, `${user}:b2`, "buy", "200", T0 + 3_600_001)]);
    expect(await alertsOf(user)).toEqual([`POSITION_LIMIT:${user}:b2`]);
    const message = (await pool.query("SELECT message FROM cm_alerts WHERE alert_id = $1", [`POSITION_LIMIT:${user}:b2`])).rows[0].message;
    expect(message).toContain("position 1100 ");
    expect(await positionOf(user)).toBe("1100");
  }, 120_000);
});

describe("ComplianceMonitor evaluations (no servers)", () => {
  const fill = (f: Partial<Fill>): Fill => ({ fillId: "f", orderId: "o", userId: "u1", symbol: SYMBOL, side: "buy", quantity: "1", price: "100", fee: "0", liquidity: "taker", ts: 0, ...f });
  const order = (e: Partial<OrderEvent>): OrderEvent => ({ eventId: "e", kind: "placed", orderId: "o", userId: "u1", symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "100", lastPrice: "100", ts: 0, ...e });

  it("an evaluation not committed leaves the state as it was; a commit applies once", () => {
    const m = new ComplianceMonitor({ positionLimit: "5" });
    m.onFill(fill({ fillId: "a", quantity: "4" }));
    const dropped = m.evaluateFill(fill({ fillId: "b", quantity: "4" })); // its transaction rolled back
    expect(dropped.alerts.map((a) => a.rule)).toEqual(["POSITION_LIMIT"]);
    const again = m.evaluateFill(fill({ fillId: "b", quantity: "4" }));
    expect(again.alerts[0].message).toContain("position 8 ");
    again.commit();
    again.commit(); // nothing more
    expect(m.onFill(fill({ fillId: "c", side: "sell", quantity: "4", price: "150" }))).toEqual([]); // 4 (b applied twice would leave 8: an alert)
    expect(() => dropped.commit()).toThrow(/changed since this evaluation/);
  });

  it("the position of a fill comes from the book when one is given; null skips the rule", () => {
    const m = new ComplianceMonitor({ positionLimit: "1000" });
    expect(m.onFill(fill({ fillId: "a", quantity: "200" }), { positionAfter: "1100" }).map((a) => a.rule)).toEqual(["POSITION_LIMIT"]);
    expect(m.onFill(fill({ fillId: "b", quantity: "2000", ts: 1 }), { positionAfter: null })).toEqual([]);
    expect(m.onFill(fill({ fillId: "c", quantity: "1", ts: 2 }), { positionAfter: "-1000.5" }).map((a) => a.rule)).toEqual(["POSITION_LIMIT"]);
  });

  it("an order event applied twice (same event id) counts once in the cancel ratio", () => {
    const m = new ComplianceMonitor({ cancelRatioMinOrders: 10, cancelRatioThreshold: 0.9 });
    for (let i = 0; i < 10; i++) m.onOrder(order({ eventId: `p${i}`, orderId: `o${i}`, ts: i }));
    for (let i = 0; i < 8; i++) m.onOrder(order({ eventId: `c${i}`, kind: "cancelled", orderId: `o${i}`, ts: 100 + i }));
    expect(m.onOrder(order({ eventId: "c7", kind: "cancelled", orderId: "o7", ts: 107 }))).toEqual([]);
    expect(m.onOrder(order({ eventId: "c8", kind: "cancelled", orderId: "o8", ts: 108 })).map((a) => a.rule)).toEqual(["EXCESSIVE_CANCEL_RATIO"]);
  });
});

describe("ComplianceMonitor state stays bounded (no servers)", () => {
  const fill = (f: Partial<Fill>): Fill => ({ fillId: "f", orderId: "o", userId: "u1", symbol: SYMBOL, side: "buy", quantity: "1", price: "100", fee: "0", liquidity: "taker", ts: 0, ...f });
  const clock = () => {
    const c = { t: 1_000_000, now: () => c.t };
    return c;
  };

  // Session 38's hunt: a user's state stayed from their first event until a restart.
  it("many users trading once each are forgotten once idle; the active ones are kept", () => {
    const c = clock();
    const m = new ComplianceMonitor({ stateIdleMs: 60_000 }, c.now);
    for (let i = 0; i < 5_000; i++) m.onFill(fill({ fillId: `f${i}`, userId: `u${i}` }), { positionAfter: "1" });
    expect(m.trackedUsers).toBe(5_000);
    c.t += 30_000;
    m.onFill(fill({ fillId: "late", userId: "active" }), { positionAfter: "1" });
    expect(m.prune()).toBe(0); // nobody idle for a minute yet
    c.t += 30_000;
    expect(m.prune()).toBe(5_000);
    expect([m.trackedUsers, m.forgotten.idle]).toEqual([1, 5_000]);
    c.t += 60_000;
    m.prune();
    expect(m.trackedUsers).toBe(0);
  });

  it("an evaluation of a user pruned meanwhile still commits, and counts", () => {
    const c = clock();
    const m = new ComplianceMonitor({ stateIdleMs: 60_000, washWindowMs: 10 * 60_000 }, c.now);
    m.onFill(fill({ fillId: "b1", orderId: "o1", side: "buy", ts: 0 }), { positionAfter: "1" });
    const pending = m.evaluateFill(fill({ fillId: "s1", orderId: "o2", side: "sell", ts: 1 }), { positionAfter: "0" }); // its transaction runs
    c.t += 60_000;
    expect(m.prune()).toBe(1);
    expect(pending.alerts.map((a) => a.rule)).toEqual(["WASH_TRADE"]);
    pending.commit(); // nothing else was committed since the state it started from
    expect(m.trackedUsers).toBe(1);
  });

  it("at the cap, a newcomer drops the least recently active user, not itself; rules still fire", () => {
    const c = clock();
    const m = new ComplianceMonitor({ stateIdleMs: 60_000, maxTrackedUsers: 3 }, c.now);
    for (const u of ["a", "b", "c"]) {
      m.onFill(fill({ fillId: `${u}1`, userId: u, orderId: `${u}-o1`, side: "buy" }), { positionAfter: "1" });
      c.t += 1;
    }
    m.onFill(fill({ fillId: "a2", userId: "a", orderId: "a-o2", side: "buy", ts: 1 }), { positionAfter: "2" }); // a active again: b is the oldest
    m.onFill(fill({ fillId: "d1", userId: "d", orderId: "d-o1" }), { positionAfter: "1" });
    expect([m.trackedUsers, m.forgotten.atCap]).toEqual([3, 1]);
    // b was forgotten: its buy no longer matches; a's still does.
    expect(m.onFill(fill({ fillId: "b2", userId: "b", orderId: "b-o2", side: "sell", ts: 2 }), { positionAfter: "0" })).toEqual([]);
    expect(m.onFill(fill({ fillId: "a3", userId: "a", orderId: "a-o3", side: "sell", ts: 2 }), { positionAfter: "1" }).map((x) => x.rule)).toEqual(["WASH_TRADE"]);
  });
});

describe("routes", () => {
  // Session 38's hunt: /alerts/mine took a userId and answered the caller's own alerts as if they were that user's.
  it("a trader's own alerts take no user id: another's is a 400 naming userId, not the caller's alerts under it", async () => {
    const s = svc ?? (svc = await start());
    const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const other = await s.app.inject({ method: "GET", url: `/alerts/mine?userId=${randomUUID()}`, headers: trader });
    expect(other.statusCode).toBe(400);
    expect(other.json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "userId" });
    const own = await s.app.inject({ method: "GET", url: "/alerts/mine?limit=5", headers: trader });
    expect([own.statusCode, own.json()]).toEqual([200, { alerts: [] }]);
  });
});

describe("what a trader is told of an alert", () => {
  // Session 38's hunt: /alerts/mine answered the alert's message and evidence ("position 1100 beyond
  // the limit 1000", "cancelled after 800 ms"), telling the trader the surveillance's thresholds.
  it("/alerts/mine names the rule, symbol and order, never the thresholds; the admins' list keeps them", async () => {
    const s = svc ?? (svc = await start());
    const user = randomUUID();
    const now = Date.now();
    const big = (eventId: string, status: "accepted" | "cancelled", ts: number) => ({
      topic: "trading.orders",
      key: user,
      value: {
        eventId, type: `order.${status}`, ts,
        order: { orderId: `${user}-spoof`, clientOrderId: "c", userId: user, symbol: SYMBOL, side: "buy", type: "limit", quantity: "1000", limitPrice: "99", lastPrice: "100", status },
      },
    });
    await deliver([fillMsg(user, `${user}:b1`, "buy", "1100", now), big(`${user}:p`, "accepted", now), big(`${user}:c`, "cancelled", now + 800)]);
    await waitUntil("two alerts", async () => (await alertsOf(user)).length === 2, 60_000);
    const mine = await s.app.inject({ method: "GET", url: "/alerts/mine", headers: { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" } });
    expect(mine.statusCode).toBe(200);
    const alerts = mine.json().alerts;
    expect(alerts.map((a: any) => [a.rule, a.symbol, a.orderId]).sort()).toEqual([["POSITION_LIMIT", SYMBOL, `o-${user}:b1`], ["SPOOFING", SYMBOL, `${user}-spoof`]]);
    for (const a of alerts) {
      expect(Object.keys(a).sort()).toEqual(["alertId", "orderId", "raisedAt", "rule", "severity", "summary", "symbol", "ts"]);
      expect(a.summary).not.toMatch(/\d/);
    }
    expect(mine.body).not.toMatch(/position 1100|limit|beyond|800 ms|after/);
    const admin = await s.app.inject({ method: "GET", url: `/alerts?userId=${user}`, headers: { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" } });
    const full = Object.fromEntries(admin.json().alerts.map((a: any) => [a.rule, a]));
    expect(full.POSITION_LIMIT.message).toBe("position 1100 beyond the limit 1000");
    expect(full.SPOOFING.message).toBe("large order away from the touch cancelled after 800 ms");
    expect(full.POSITION_LIMIT.evidence).toEqual([`${user}:b1`]);
  }, 120_000);
});

describe("compliance-monitor's rule state in memory", () => {
  const metric = async (s: Service<any>, line: RegExp) => {
    const text = (await s.app.inject({ method: "GET", url: "/metrics" })).body;
    const m = line.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  // Session 38's hunt: every user who ever traded stayed in memory until a restart.
  it("users who each traded once are dropped once idle (state back to 0); rules still fire meanwhile", async () => {
    await svc?.close();
    const env = { COMPLIANCE_WASH_WINDOW_MS: "1000", COMPLIANCE_CANCEL_RATIO_WINDOW_MS: "1000", COMPLIANCE_STATE_IDLE_MS: "1500", COMPLIANCE_STATE_SWEEP_MS: "100" };
    await expect(start({ ...env, COMPLIANCE_STATE_IDLE_MS: "999" })).rejects.toThrow(/COMPLIANCE_STATE_IDLE_MS \(999\) must be at least the longest rule window \(5000 ms\)/);
    // Idle after 10 s: long enough that the wash pair below is never split by a sweep, short for the test.
    svc = await start({ ...env, COMPLIANCE_STATE_IDLE_MS: "10000" });
    const s = svc;
    const run = randomUUID();
    const users = Array.from({ length: 300 }, (_, i) => `cm-once-${i}-${run}`);
    await deliver(users.map((u) => fillMsg(u, `${u}:f1`, "buy", "1", Date.now())));
    // The same rules fire while sweeps run: a wash trade inside the (1 s) window.
    const w = `cm-wash-${run}`;
    const t = Date.now();
    await deliver([fillMsg(w, `${w}:b`, "buy", "1", t, `${w}:b`, "100"), fillMsg(w, `${w}:s`, "sell", "1", t + 10, `${w}:s`, "100")]);
    expect(await alertsOf(w)).toEqual([`WASH_TRADE:${w}:s`]);
    await waitUntil("idle users dropped", async () => (await metric(s, /^compliance_state_users\{[^}]*\} (\d+)$/m)) === 0, 60_000);
    expect(await metric(s, /^compliance_state_users_forgotten_total\{[^}]*reason="idle"[^}]*\} (\d+)$/m)).toBeGreaterThanOrEqual(301);
    expect(await metric(s, /^compliance_state_users_forgotten_total\{[^}]*reason="cap"[^}]*\} (\d+)$/m)).toBe(0);
  }, 120_000);
});
