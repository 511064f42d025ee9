/**
 * A trading-engine in the test process, on the paper exchange the services run with (fees, slippage,
 * tick size), over a given PostgreSQL client: its relay publishes nothing (what it would send after
 * a commit is in te_outbox, read by the tests) and its counters have a registry of their own
 * (`registry`: a test's, to read them).
 */
import { promClient } from "../harness/deps";
import { TradingEngine, type EngineDeps } from "../../services/src/services/trading-engine/engine";
import { liveOrdersUnrecordedCounter } from "../../services/src/services/trading-engine/metrics";
import type { OutboxRelay } from "../../services/src/trading/infra/outbox";

export const TEST_PAPER_EXCHANGE: EngineDeps["paper"] = { makerFeeBps: "10", takerFeeBps: "10", slippageBps: "5", impactBps: "0", tickSize: "0.01" };

export function testEngine(o: Pick<EngineDeps, "pg" | "log" | "live" | "now">, registry = new promClient.Registry()): TradingEngine {
  return new TradingEngine({
    ...o,
    relay: { notify() {} } as unknown as OutboxRelay,
    paper: TEST_PAPER_EXCHANGE,
    fillsTotal: new promClient.Counter({ name: "te_fills_total", help: "fills", labelNames: ["liquidity"], registers: [registry] }),
    liveOrdersUnrecorded: liveOrdersUnrecordedCounter(registry),
  });
}
