/**
 * What feeds the chains: decisions pulled from ai-orchestrator (GET /internal/decisions, every
 * CHAIN_POLL_MS, re-reading CHAIN_REREAD_MS back because a late commit may carry an earlier
 * decided_at; ClickHouse folds the repeats), order events and fills from `trading.orders` and
 * `trading.executions` (a consumer group of its own). Each batch goes to ClickHouse, then to the
 * ArangoDB graph when that store is enabled.
 */
import type { Logger } from "pino";
import type { PeerClient } from "../../kit";
import type { ExecutionMsg, OrderEventMsg } from "../../trading/events";
import type { BatchMessage } from "../../trading/infra/kafka";
import { TOPICS } from "../../trading/events";
import { decisionGraph, decisionOrderRow, decisionRow, fillGraph, fillRow, orderGraph, orderRow, type DecisionIn } from "./chains";
import type { ChainGraph } from "./graph";
import type { ChainStore } from "./store";

export interface IngestDeps {
  store: ChainStore;
  graph?: () => Promise<ChainGraph>;
  peers: PeerClient;
  log: Logger;
}

export async function applyEvents(deps: IngestDeps, msgs: BatchMessage[]): Promise<void> {
  const orders: OrderEventMsg[] = [];
  const fills: Extract<ExecutionMsg, { type: "fill" }>["fill"][] = [];
  for (const m of msgs) {
    let v: unknown;
    try {
      v = JSON.parse(m.value);
    } catch {
      deps.log.warn({ topic: m.topic }, "unparseable event skipped");
      continue;
    }
    if (m.topic === TOPICS.orders) orders.push(v as OrderEventMsg);
    else if ((v as ExecutionMsg).type === "fill") fills.push((v as Extract<ExecutionMsg, { type: "fill" }>).fill);
  }
  const orderRows = orders.map(orderRow).filter((r): r is NonNullable<typeof r> => !!r);
  // Fills of every order are kept (18.16 joins them to decisions at query time through the order).
  await deps.store.insertOrders(orderRows);
  await deps.store.insertFills(fills.map(fillRow));
  if (deps.graph && (orderRows.length || fills.length)) {
    const parts = [...orders.map(orderGraph).filter((g): g is NonNullable<typeof g> => !!g), ...fills.map(fillGraph)];
    await (await deps.graph()).write(parts.flatMap((p) => p.vertices), parts.flatMap((p) => p.edges));
  }
}

/** Pulls the decisions recorded since `since`; returns the next `since`. */
export async function pullDecisions(deps: IngestDeps, since: Date, rereadMs: number): Promise<Date> {
  let cursor = since;
  for (;;) {
    // A read: cut PEER_CLOSE_GRACE_MS into the service's close (kit peers cutOnClose), a 503 SHUTTING_DOWN.
    const r = await deps.peers.call<{ decisions: DecisionIn[] }>("ai-orchestrator", `/internal/decisions?since=${encodeURIComponent(cursor.toISOString())}&limit=1000`, { cutOnClose: true });
    if (r.status !== 200) throw new Error(`ai-orchestrator /internal/decisions answered ${r.status}`);
    const batch = r.body.decisions;
    // The links first: a decision that can be read has its order's link, so an order an older
    // replica wrote to the old table is in its chain as soon as the decision is.
    await deps.store.insertDecisionOrders(batch.map(decisionOrderRow).filter((r): r is NonNullable<typeof r> => !!r));
    await deps.store.insertDecisions(batch.map(decisionRow));
    if (deps.graph && batch.length) {
      const parts = batch.map(decisionGraph);
      await (await deps.graph()).write(parts.flatMap((p) => p.vertices), parts.flatMap((p) => p.edges));
    }
    const last = batch.length ? new Date(batch[batch.length - 1].decidedAt) : cursor;
    // A full page: continue from its last instant (the page boundary is re-read, ClickHouse folds it).
    if (batch.length < 1000 || last.getTime() === cursor.getTime()) return new Date(Math.max(since.getTime(), last.getTime() - rereadMs));
    cursor = last;
  }
}
