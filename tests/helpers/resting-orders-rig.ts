/**
 * order-management and the trading-engine in process on the order-path rig (./order-path-rig.ts:
 * real PostgreSQL and Redis, a private Kafka), a first bar at 100 taken by the engine: the set-up of
 * the tests of what happens to orders already resting (tests/trading/kill-switch-resting.test.ts,
 * tests/trading/account-deletion-orders.test.ts; before, each spelt it again). Either service can
 * be stopped and started again by a test (order-management as 1 or more replicas); the probe's
 * requests go to replica 0 and to the engine running at the time. A suite's own hooks, registered
 * after this call, run after the rig's beforeAll and before its afterAll.
 */
import { afterAll, beforeAll } from "vitest";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import orderManagement from "../../services/src/services/order-management";
import tradingEngine from "../../services/src/services/trading-engine";
import { http } from "../trading/e2e-helpers";
import { orderPathProbe, startOrderPathRig, type OrderPathRig } from "./order-path-rig";

interface Running {
  service: Service<any>;
  url: string;
}

export interface RestingOrdersRigOptions {
  symbol: string;
  /** Bound of each wait of the probe. */
  waitMs: number;
  /** The services' settings, over the order-path rig's. */
  env?: Record<string, string>;
}

export function useRestingOrdersRig(o: RestingOrdersRigOptions) {
  const srv = useServers("postgres", "redis");
  let rig: OrderPathRig | undefined;
  let oms: Running[] = [];
  let engine: Running | undefined;
  const started = () => {
    if (!rig) throw new Error("the resting-orders rig is not started (use it inside tests and hooks)");
    return rig;
  };
  const listening = async (service: Service<any>): Promise<Running> => ({ service, url: await service.listen({ port: 0, host: "127.0.0.1" }) });
  const probe = orderPathProbe({ symbol: o.symbol, omUrl: () => oms[0].url, engineUrl: () => engine!.url, producer: () => started().producer, waitMs: o.waitMs });
  const handle = {
    ...probe,
    /** The order-path rig: env, pool, redis, producer. */
    get rig(): OrderPathRig {
      return started();
    },
    /** order-management's running replicas (none while stopped). */
    get oms(): readonly Running[] {
      return oms;
    },
    get engine(): Running {
      if (!engine) throw new Error("the trading-engine is stopped");
      return engine;
    },
    async startOms(n = 1): Promise<void> {
      for (let i = 0; i < n; i++) oms.push(await listening(await createService(orderManagement, { env: started().env, defaultMetrics: false })));
    },
    async stopOms(): Promise<void> {
      for (const r of oms) await r.service.close().catch(() => undefined);
      oms = [];
    },
    async startEngine(): Promise<void> {
      engine = await listening(await createService(tradingEngine, { env: started().env, defaultMetrics: false }));
    },
    async stopEngine(): Promise<void> {
      await engine?.service.close().catch(() => undefined);
      engine = undefined;
    },
    /** An order sent to replica 0 as `userId` (a trader), under `key` as its Idempotency-Key if given. */
    submit: (userId: string, body: Record<string, unknown>, key?: string) =>
      http("POST", `${oms[0].url}/`, { body, headers: { ...probe.as(userId), ...(key ? { "idempotency-key": key } : {}) } }),
    limit: (side: "buy" | "sell", quantity: string, limitPrice: string) => ({ symbol: o.symbol, side, type: "limit", quantity, limitPrice }),
    /** The order's events in om_outbox (its history on trading.orders), by state. */
    historyOf: async (id: string) =>
      (await started().pool.query<{ e: string }>("SELECT split_part(event_id, ':', 2) AS e FROM om_outbox WHERE msg_key = $1 ORDER BY id", [id])).rows.map((r) => r.e),
    engineFills: async (id: string) => (await started().pool.query("SELECT fill_id FROM te_fills WHERE order_id = $1", [id])).rowCount,
  };

  beforeAll(async () => {
    rig = await startOrderPathRig(srv.env, { symbol: o.symbol, lastPrice: "100", env: o.env });
    await handle.startOms(1);
    await handle.startEngine();
    await probe.sendBar("100");
  }, 300_000);

  afterAll(async () => {
    await handle.stopOms();
    await handle.stopEngine();
    await rig?.stop();
  }, 60_000);

  return handle;
}
