/**
 * trading-engine (9000): executes accepted orders.
 * Consumes `trading.orders` (order.accepted -> execute, order.cancelled -> pull a resting limit) and
 * `market.candles` (closed bars: resting limits fill when a bar crosses them), serially on one
 * consumer. Paper mode (default) executes on the deterministic PaperExchange; `TRADING_MODE=live`
 * sends orders to Binance (keys from BINANCE_API_KEY / BINANCE_SECRET_KEY only in that mode) with
 * client-order-id reconciliation.
 *
 * Exactly-once effect: every execution is recorded in PostgreSQL (te_orders, te_fills, te_last_bar)
 * together with its outgoing events (te_outbox) in one transaction. Fill ids are deterministic
 * (`${orderId}:${n}`), te_orders is keyed by order id and te_last_bar remembers the last bar
 * processed per symbol, so a redelivered order or bar after a crash is recognised and skipped, and a
 * restart cannot mint a second fill. The in-memory exchange is rebuilt from those tables on start
 * (and after any failed transaction). It is a singleton (one replica): the book lives in one process.
 */
import { consumeBatches, consumerEnv, type BatchMessage } from "../../trading/infra/kafka";
import { defineService, Type, envUrl, envEnum } from "../../kit";
import { BinanceTradingClient, binanceFills, toBinanceOrder } from "../../trading/binance/adapter";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { enqueue, OutboxRelay, type OutboxEvent } from "../../trading/infra/outbox";
import { PaperExchange, type ExecutionReport } from "../../trading/paperExchange";
import type { Bar, Fill, OrderRequest } from "../../trading/types";
import type { PoolClient } from "pg";
import { Counter } from "prom-client";

const bpsVar = (d: string) => Type.String({ default: d, pattern: "^\\d+(\\.\\d+)?$" });

export default defineService({
  name: "trading-engine",
  config: {
    ...consumerEnv,
    TRADING_MODE: envEnum(["paper", "live"], { default: "paper" }),
    BINANCE_API_KEY: Type.Optional(Type.String({ secret: true })),
    BINANCE_SECRET_KEY: Type.Optional(Type.String({ secret: true })),
    BINANCE_REST_URL: envUrl({ protocols: ["http", "https"], default: "https://api.binance.com" }),
    BINANCE_QUOTE_ASSET: Type.String({ default: "USDT" }),
    PAPER_MAKER_FEE_BPS: bpsVar("10"),
    PAPER_TAKER_FEE_BPS: bpsVar("10"),
    PAPER_SLIPPAGE_BPS: bpsVar("5"),
    PAPER_IMPACT_BPS: bpsVar("0"),
    PAPER_TICK_SIZE: Type.String({ default: "0.01", pattern: "^\\d+(\\.\\d+)?$" }),
    TE_CONSUMER_GROUP: Type.String({ default: "trading-engine" }),
    TE_OUTBOX_INTERVAL_MS: Type.Integer({ default: 200, minimum: 10 }),
  },
  async register(ctx) {
    const c = ctx.config;
    const pg = ctx.datastores.postgres;
    const kafka = ctx.datastores.kafka;
    let live: BinanceTradingClient | undefined;
    if (c.TRADING_MODE === "live") {
      if (!c.BINANCE_API_KEY || !c.BINANCE_SECRET_KEY) throw new Error("TRADING_MODE=live requires BINANCE_API_KEY and BINANCE_SECRET_KEY");
      live = new BinanceTradingClient({ apiKey: c.BINANCE_API_KEY, secretKey: c.BINANCE_SECRET_KEY, baseUrl: c.BINANCE_REST_URL });
    }
    const relay = new OutboxRelay(pg.pool, "te_outbox", kafka, ctx.log, { intervalMs: c.TE_OUTBOX_INTERVAL_MS });
    const fillsTotal = new Counter({ name: "te_fills_total", help: "fills produced", labelNames: ["liquidity"], registers: [ctx.metrics.registry] });
    let exchange: PaperExchange;

    async function loadState(): Promise<void> {
      exchange = new PaperExchange({
        makerFeeBps: c.PAPER_MAKER_FEE_BPS,
        takerFeeBps: c.PAPER_TAKER_FEE_BPS,
        slippageBps: c.PAPER_SLIPPAGE_BPS,
        impactBps: c.PAPER_IMPACT_BPS,
        tickSize: c.PAPER_TICK_SIZE,
      });
      const bars = await pg.query<{ bar: Bar }>("SELECT bar FROM te_last_bar");
      for (const r of bars.rows) exchange.setLastBar(r.bar);
      const resting = await pg.query<{ payload: OrderRequest; remaining: string; fill_seq: number }>(
        "SELECT payload, remaining::text AS remaining, fill_seq FROM te_orders WHERE status = 'resting' ORDER BY created_at, order_id",
      );
      for (const r of resting.rows) exchange.restore({ order: r.payload, remaining: r.remaining, fillSeq: r.fill_seq });
      ctx.log.info({ bars: bars.rowCount, resting: resting.rowCount }, "engine state loaded");
    }
    await loadState();

    const fillEvent = (f: Fill): OutboxEvent => {
      const msg: ExecutionMsg = { eventId: f.fillId, type: "fill", fill: f };
      return { eventId: f.fillId, topic: TOPICS.executions, key: f.orderId, payload: msg };
    };
    const outcomeEvent = (o: OrderRequest, type: "order.expired" | "order.rejected", reason: string): OutboxEvent => {
      const eventId = `${o.orderId}:exec:${type}`;
      const msg: ExecutionMsg = { eventId, type, orderId: o.orderId, userId: o.userId, symbol: o.symbol, reason, ts: Date.now() };
      return { eventId, topic: TOPICS.executions, key: o.orderId, payload: msg };
    };
    /** Inserts fills in one statement; only the ones not recorded before produce events. */
    async function recordFills(tx: PoolClient, fills: Fill[], events: OutboxEvent[]) {
      if (fills.length === 0) return;
      const ins = await tx.query<{ fill_id: string }>(
        "INSERT INTO te_fills (fill_id, order_id, payload) SELECT * FROM unnest($1::text[], $2::uuid[], $3::jsonb[]) ON CONFLICT DO NOTHING RETURNING fill_id",
        [fills.map((f) => f.fillId), fills.map((f) => f.orderId), fills.map((f) => JSON.stringify(f))],
      );
      const fresh = new Set(ins.rows.map((r) => r.fill_id));
      for (const f of fills)
        if (fresh.has(f.fillId)) {
          events.push(fillEvent(f));
          fillsTotal.inc({ liquidity: f.liquidity });
        }
    }

    /** Runs a state change in a transaction; on failure the in-memory book is rebuilt from the database. */
    async function atomically(fn: (tx: PoolClient, events: OutboxEvent[]) => Promise<void>): Promise<void> {
      try {
        await pg.transaction(async (tx) => {
          const events: OutboxEvent[] = [];
          await fn(tx, events);
          await enqueue(tx, "te_outbox", events);
        });
        relay.notify();
      } catch (err) {
        await loadState().catch(() => undefined);
        throw err;
      }
    }

    interface Pending {
      seen: Set<string>;
      rows: { o: OrderRequest; status: string; remaining: string; fillSeq: number }[];
      fills: Fill[];
    }
    /** Executes an accepted order; its rows are written by `flush` in the same batch transaction. */
    async function onAccepted(events: OutboxEvent[], p: Pending, o: OrderRequest): Promise<void> {
      if (p.seen.has(o.orderId)) return; // redelivery after a restart (or twice in a batch): already executed
      p.seen.add(o.orderId);
      let report: ExecutionReport;
      if (live) {
        try {
          const { order } = await live.placeOrderReconciled(toBinanceOrder(o));
          const fills = binanceFills(o, order, c.BINANCE_QUOTE_ASSET, Date.now());
          const open = order.status === "NEW" || order.status === "PARTIALLY_FILLED";
          report = { orderId: o.orderId, status: open ? "resting" : fills.length ? "filled" : "expired", fills, remaining: open ? o.quantity : "0" };
        } catch (err) {
          report = { orderId: o.orderId, status: "rejected", fills: [], remaining: o.quantity, reason: `BINANCE: ${(err as Error).message}`.slice(0, 200) };
        }
      } else {
        report = exchange.submit(o);
      }
      p.rows.push({ o, status: report.status, remaining: report.remaining, fillSeq: report.fills.length });
      p.fills.push(...report.fills);
      if (report.status === "rejected") events.push(outcomeEvent(o, "order.rejected", report.reason ?? "REJECTED"));
      if (report.status === "expired") events.push(outcomeEvent(o, "order.expired", "IOC_NOT_FILLED"));
    }

    async function flush(tx: PoolClient, events: OutboxEvent[], p: Pending): Promise<void> {
      if (p.rows.length) {
        await tx.query(
          `INSERT INTO te_orders (order_id, payload, status, remaining, fill_seq)
           SELECT * FROM unnest($1::uuid[], $2::jsonb[], $3::text[], $4::numeric[], $5::int[]) ON CONFLICT DO NOTHING`,
          [p.rows.map((r) => r.o.orderId), p.rows.map((r) => JSON.stringify(r.o)), p.rows.map((r) => r.status), p.rows.map((r) => r.remaining), p.rows.map((r) => r.fillSeq)],
        );
        p.rows = [];
      }
      await recordFills(tx, p.fills, events);
      p.fills = [];
    }

    async function onCancelled(tx: PoolClient, orderId: string): Promise<void> {
      const r = await tx.query("UPDATE te_orders SET status = 'cancelled', updated_at = now() WHERE order_id = $1 AND status = 'resting'", [orderId]);
      if (r.rowCount) exchange.cancel(orderId);
    }

    async function onBar(tx: PoolClient, events: OutboxEvent[], bar: Bar): Promise<void> {
      const prev = await tx.query<{ open_time: string }>("SELECT open_time FROM te_last_bar WHERE symbol = $1 FOR UPDATE", [bar.symbol]);
      if (prev.rows[0] && Number(prev.rows[0].open_time) >= bar.openTime) return; // old or duplicate bar
      for (const rep of exchange.onBar(bar)) {
        await tx.query("UPDATE te_orders SET status = $2, remaining = $3, fill_seq = fill_seq + $4, updated_at = now() WHERE order_id = $1", [
          rep.orderId,
          rep.status === "filled" ? "filled" : "resting",
          rep.remaining,
          rep.fills.length,
        ]);
        await recordFills(tx, rep.fills, events);
      }
      await tx.query(
        `INSERT INTO te_last_bar (symbol, open_time, bar) VALUES ($1, $2, $3)
         ON CONFLICT (symbol) DO UPDATE SET open_time = EXCLUDED.open_time, bar = EXCLUDED.bar`,
        [bar.symbol, bar.openTime, JSON.stringify(bar)],
      );
    }

    /** One transaction per fetched batch (orders or bars of one partition), in offset order. */
    async function onBatch(msgs: BatchMessage[]): Promise<void> {
      const parsed = msgs.map((m) => ({ topic: m.topic, v: JSON.parse(m.value) }));
      const accepted = parsed.filter((m) => m.topic === TOPICS.orders && (m.v as OrderEventMsg).type === "order.accepted").map((m) => (m.v as OrderEventMsg).order.orderId);
      await atomically(async (tx, events) => {
        const seen = accepted.length
          ? new Set((await tx.query<{ order_id: string }>("SELECT order_id FROM te_orders WHERE order_id = ANY($1::uuid[])", [accepted])).rows.map((r) => r.order_id))
          : new Set<string>();
        const pending: Pending = { seen, rows: [], fills: [] };
        for (const m of parsed) {
          if (m.topic === TOPICS.candles) {
            await flush(tx, events, pending);
            await onBar(tx, events, m.v as Bar);
            continue;
          }
          const ev = m.v as OrderEventMsg;
          if (ev.type === "order.accepted") {
            const s = ev.order;
            await onAccepted(events, pending, { orderId: s.orderId, clientOrderId: s.clientOrderId, userId: s.userId, symbol: s.symbol, side: s.side, type: s.type, quantity: s.quantity, limitPrice: s.limitPrice, timeInForce: s.timeInForce });
          } else if (ev.type === "order.cancelled") {
            await flush(tx, events, pending);
            await onCancelled(tx, ev.order.orderId);
          }
        }
        await flush(tx, events, pending);
      });
    }

    ctx.app.get("/book", async () => ({
      mode: c.TRADING_MODE,
      resting: exchange.restingOrders().map((r) => ({ orderId: r.order.orderId, symbol: r.order.symbol, side: r.order.side, limitPrice: r.order.limitPrice, remaining: r.remaining })),
    }));
    ctx.app.get("/last/:symbol", { schema: { params: Type.Object({ symbol: Type.String() }) } }, async (req) => ({ bar: exchange.lastBar(req.params.symbol) ?? null }));

    relay.start();
    ctx.onClose(() => relay.stop());
    await consumeBatches(ctx, { groupId: c.TE_CONSUMER_GROUP, topics: [TOPICS.orders, TOPICS.candles], handle: onBatch });
  },
});
