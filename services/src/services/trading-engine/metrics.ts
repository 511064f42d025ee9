/**
 * `te_live_orders_unrecorded_total{outcome}`: live orders Binance accepted that the engine could not
 * record in te_orders even alone (sentOrders.ts), by what became of them at Binance: `cancelled`
 * (it rested there and the cancel succeeded), `cancel_failed` (it may still be open at Binance,
 * where no poll sees it), `not_open` (it was not resting: filled or refused at once, or ended
 * otherwise by the cancel). Each order is counted once, under its first outcome; its te_live_sends
 * record holds the latest (`unrecorded`, migration 0398: a redelivery that cancels a `cancel_failed`
 * one marks it `cancelled`). Every one needs a person: the order was at Binance and has no te_orders
 * row. One that ended there (`cancelled`, `not_open`) is closed in order-management all the same:
 * its fills (in te_fills, or named in the error log if they cannot be written) and, unless they
 * filled it, `order.expired` LIVE_ORDER_UNRECORDED are published (sentOrders.ts publishEnd); a
 * `cancel_failed` one stays open there until its cancel succeeds (the live poll tries it again,
 * leftSent.ts, as a redelivery does; never counted again). Each outcome starts at 0, so
 * `increase()` sees the first one.
 */
import { Counter, type Registry } from "prom-client";

export const LIVE_ORDERS_UNRECORDED_METRIC = "te_live_orders_unrecorded_total";
export const UNRECORDED_OUTCOMES = ["cancelled", "cancel_failed", "not_open"] as const;
export type UnrecordedOutcome = (typeof UNRECORDED_OUTCOMES)[number];

export function liveOrdersUnrecordedCounter(registry: Registry): Counter<"outcome"> {
  const counter = new Counter({
    name: LIVE_ORDERS_UNRECORDED_METRIC,
    help: "live orders Binance accepted that could not be recorded in te_orders, by what became of them at Binance",
    labelNames: ["outcome"],
    registers: [registry],
  });
  for (const outcome of UNRECORDED_OUTCOMES) counter.inc({ outcome }, 0);
  return counter;
}
