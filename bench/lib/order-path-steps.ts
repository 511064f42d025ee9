/**
 * Where an order's submit-to-fill time goes, step by step, from timestamps the path already keeps
 * (nothing added to the services): PostgreSQL's transaction start times (`now()`: om_orders /
 * te_orders / om_order_fills `created_at`), Kafka's record CreateTime (set by the producer as it
 * sends: the committer's direct publish, or the relay's drain with OM_/TE_OUTBOX_DIRECT=false), and the
 * load generator's own clock (intended send, HTTP 201, fill seen). All are the same host clock.
 * Each step runs from the end of the previous one; a figure is p50 / p99 over the phase's orders.
 */
import { writeFileSync } from "node:fs";
import type { Pool } from "pg";
import { kafkajs } from "../../tests/harness";
import { percentile } from "./stats";

export interface TimedOrder {
  orderId: string;
  /** Epoch ms (performance.timeOrigin-based) of the intended send, the 201, the fill seen by the load generator. */
  intended: number;
  acked: number;
  fillSeen?: number;
  /** Kafka CreateTime of the fill on trading.executions. */
  fillKafka?: number;
}

/** Kafka CreateTime of `order.accepted` and `order.filled` of each order, read back from trading.orders. */
async function orderEventTimes(kafka: InstanceType<typeof kafkajs.Kafka>, ids: Set<string>, timeoutMs = 20_000) {
  const accepted = new Map<string, number>();
  const filled = new Map<string, number>();
  const c = kafka.consumer({ groupId: `bench-steps-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 1000 });
  await c.connect();
  await c.subscribe({ topic: "trading.orders", fromBeginning: true });
  let done!: () => void;
  const complete = new Promise<void>((r) => (done = r));
  await c.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const id = m.key?.toString();
        if (!id || !ids.has(id) || !m.value) continue;
        const type = (JSON.parse(m.value.toString()) as { type: string }).type;
        if (type === "order.accepted") accepted.set(id, Number(m.timestamp));
        if (type === "order.filled") filled.set(id, Number(m.timestamp));
      }
      if (filled.size >= ids.size && accepted.size >= ids.size) done();
    },
  });
  await Promise.race([complete, new Promise((r) => setTimeout(r, timeoutMs))]);
  await c.disconnect();
  return { accepted, filled };
}

/** Prints the per-step breakdown of the orders of one phase. */
export async function printOrderPathSteps(pool: Pool, kafka: InstanceType<typeof kafkajs.Kafka>, orders: TimedOrder[]): Promise<void> {
  const ids = orders.map((o) => o.orderId);
  // Read as epoch milliseconds with the microseconds as fractions.
  const q = async (sql: string) => new Map((await pool.query<{ id: string; t: string | null }>(sql, [ids])).rows.map((r) => [r.id, r.t === null ? NaN : Number(r.t)]));
  const epoch = (col: string) => `extract(epoch from ${col}) * 1000`;
  // Kafka first: it waits until every order.filled is out, so order-management has applied every fill
  // (it gathers executions for OM_EXECUTIONS_LINGER_MS) before its timestamps are read.
  const kafkaTimes = await orderEventTimes(kafka, new Set(ids));
  const [omTx, teTx, omApply] = await Promise.all([
    q(`SELECT order_id::text AS id, ${epoch("created_at")} AS t FROM om_orders WHERE order_id = ANY($1::uuid[])`),
    q(`SELECT order_id::text AS id, ${epoch("created_at")} AS t FROM te_orders WHERE order_id = ANY($1::uuid[])`),
    q(`SELECT order_id::text AS id, ${epoch("min(created_at)")} AS t FROM om_order_fills WHERE order_id = ANY($1::uuid[]) GROUP BY order_id`),
  ]);
  const g = (m: Map<string, number>, id: string) => m.get(id) ?? NaN;
  const steps: [string, (o: TimedOrder) => number, (o: TimedOrder) => number][] = [
    ["intended send -> order-management's submit transaction begins (load generator, gateway, HTTP, wait for a lane)", (o) => o.intended, (o) => g(omTx, o.orderId)],
    ["  (side) submit transaction begins -> HTTP 201 at the client (transaction, commit, answer back)", (o) => g(omTx, o.orderId), (o) => o.acked],
    ["submit transaction begins -> order.accepted produced (transaction, commit, publish; Kafka CreateTime)", (o) => g(omTx, o.orderId), (o) => g(kafkaTimes.accepted, o.orderId)],
    ["produced -> trading-engine's batch transaction begins (broker, fetch wait, engine queue)", (o) => g(kafkaTimes.accepted, o.orderId), (o) => g(teTx, o.orderId)],
    ["engine transaction begins -> fill produced (execution, commit, publish; Kafka CreateTime)", (o) => g(teTx, o.orderId), (o) => o.fillKafka ?? NaN],
    ["fill produced -> seen by the load generator (its consumer's fetch): end of submit-to-fill", (o) => o.fillKafka ?? NaN, (o) => o.fillSeen ?? NaN],
    ["  (side) fill produced -> order-management's fill transaction begins", (o) => o.fillKafka ?? NaN, (o) => g(omApply, o.orderId)],
    ["  (side) fill transaction begins -> order.filled produced (filled visible to consumers)", (o) => g(omApply, o.orderId), (o) => g(kafkaTimes.filled, o.orderId)],
  ];
  // BENCH_DUMP=<file>: each order's points in ms from its intended send, to see whether the slow
  // ones share a moment (a stall of the whole machine, a pause of one process) or a step.
  if (process.env.BENCH_DUMP) {
    const t0 = orders[0].intended;
    const points = (o: TimedOrder) => [g(omTx, o.orderId), o.acked, g(kafkaTimes.accepted, o.orderId), g(teTx, o.orderId), o.fillKafka ?? NaN, o.fillSeen ?? NaN].map((t) => (t - o.intended).toFixed(1));
    const lines = orders.map((o) => [(o.intended - t0).toFixed(1), ...points(o)].join(" "));
    writeFileSync(process.env.BENCH_DUMP, [`# first intended send at epoch ms ${t0.toFixed(1)}`, "sent_at om_tx_begins acked accepted_produced engine_tx_begins fill_produced fill_seen", ...lines].join("\n") + "\n");
  }
  console.log(`  where submit-to-fill goes (each step from the end of the previous; p50 / p99 over ${orders.length} orders; "(side)" steps are off the measured path):`);
  for (const [name, from, to] of steps) {
    // A step without a timestamp at either end (NaN) is counted apart, not ranked.
    const timed = orders.map((o) => to(o) - from(o)).filter(Number.isFinite);
    const missing = orders.length - timed.length;
    console.log(`    ${percentile(timed, 50).toFixed(1).padStart(8)} / ${percentile(timed, 99).toFixed(1).padStart(8)} ms  ${name}${missing ? ` (${missing} without a timestamp)` : ""}`);
  }
}
