/**
 * The red-team rounds' platform (./session-55.test.ts, ./session-56.test.ts): the public-facing services
 * on real PostgreSQL, Redis, Kafka and ClickHouse with the local card processor, two gateways (the
 * platform's without the fast lane, and one with it: a case holds on both), an admin and two traders
 * with a saved card each (`who`), and `gw`, one request through a gateway judged by ./oracle.ts into
 * `failures` (emptied before each test). `judged` counts the cases a file checked, logged at the end.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { useServersWith } from "../harness/shared";
import { FakeCardProcessor } from "../fakes/card-processor";
import { startPlatform, type Platform } from "../helpers/platform";
import { portsOf } from "../helpers/raw-http";
import { checkStatusCases, sendJudged, type JudgedAnswer, type StatusCase } from "./oracle";

export const PASSWORD = "correct horse battery staple";
/** The services the platform runs. */
export const SERVICES = ["api-gateway", "user-management", "database-service", "payment-service", "billing-service", "revenue-analytics", "notification-service"];

export type Account = { id: string; token: string; pm: string };
/** `raw`: a JSON body sent as written (sendJudged), in place of `body`. */
export type Ask = { token?: string; key?: string; body?: unknown; raw?: string; headers?: Record<string, string>; via?: "plain" | "lane" };

export interface RedTeamPlatform {
  readonly srv: ReturnType<typeof useServersWith<"postgres" | "redis" | "kafka" | "clickhouse">>;
  readonly fake: FakeCardProcessor;
  readonly admin: { email: string; password: string };
  /** The gateways' URLs: the platform's without the fast lane, and this file's with it. */
  readonly gateways: Record<"plain" | "lane", string>;
  readonly who: Record<string, Account>;
  readonly failures: string[];
  p: Platform;
  internalPorts: number[];
  judged: number;
  /** One request through a gateway (the plain one unless `via`), judged; `as` a name in `who`, a raw token, or "none"; `key` an API key instead. */
  gw(as: string, method: string, path: string, o?: Ask): Promise<JudgedAnswer>;
  /** A new trader (`name` and random digits) registered and logged in, with a saved card. */
  account(name: string): Promise<Account>;
  /** Each case sent through a gateway (`o.via`) and judged (./oracle.ts checkStatusCases), counted in `judged`. */
  check(cases: StatusCase[], o?: Omit<Ask, "body" | "token">): Promise<void>;
  /** Holds the fake processor's answer to every charge of `amount` until `release()`; `held()` counts those at the processor. */
  holdCharges(amount: number): { held(): number; release(): void };
}

/** The field an error body names, if it is JSON and names one. */
export const errorFieldOf = (body: string): string | undefined => {
  try {
    return JSON.parse(body).error?.field;
  } catch {
    return undefined;
  }
};

/** The platform for one test file (its hooks registered here); `label` names the file in the count's log line, `env` adds to every service's, `more` runs catalog services besides SERVICES. */
export function useRedTeamPlatform(label: string, env: Record<string, string> = {}, more: readonly string[] = []): RedTeamPlatform {
  const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
  let laneGateway: Service<any> | undefined;
  const rig: RedTeamPlatform = {
    srv,
    fake: new FakeCardProcessor(),
    admin: { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" },
    gateways: { plain: "", lane: "" },
    who: {},
    failures: [],
    p: undefined as unknown as Platform,
    internalPorts: [],
    judged: 0,
    gw(as, method, path, o = {}) {
      const token = o.token ?? (as === "none" ? undefined : rig.who[as]?.token ?? as);
      const headers: Record<string, string> = { ...(o.key ? { "x-api-key": o.key } : token ? { authorization: `Bearer ${token}` } : {}), ...o.headers };
      rig.judged++;
      return sendJudged(`${rig.gateways[o.via ?? "plain"]}${path}`, method, { headers, body: o.body, raw: o.raw, failures: rig.failures, internalPorts: rig.internalPorts });
    },
    account: undefined as unknown as RedTeamPlatform["account"],
    check(cases, o = {}) {
      rig.judged += cases.length;
      return checkStatusCases(cases, (as, method, path, body) => rig.gw(as, method, path, { ...o, body }), rig.failures);
    },
    holdCharges(amount) {
      let held = 0;
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      rig.fake.beforeAnswer = async (intent) => {
        if (intent.amount !== amount) return;
        held++;
        await released;
      };
      return {
        held: () => held,
        release: () => {
          release();
          rig.fake.beforeAnswer = undefined;
        },
      };
    },
  };
  rig.account = async (name: string): Promise<Account> => {
    const email = `${name}-${randomBytes(3).toString("hex")}@example.com`;
    const id = (await rig.gw("none", "POST", "/api/users/register", { body: { email, password: PASSWORD } })).json.user.id as string;
    const token = (await rig.gw("none", "POST", "/api/users/login", { body: { email, password: PASSWORD } })).json.accessToken as string;
    const pm = (await rig.gw(token, "POST", "/api/payments/payment-methods", { body: { paymentMethod: "pm_card_visa" } })).json.paymentMethod as string;
    return { id, token, pm };
  };

  beforeAll(async () => {
    const { fake, admin, gateways, who } = rig;
    await fake.start();
    rig.p = await startPlatform(
      srv.env,
      { BOOTSTRAP_ADMIN_EMAIL: admin.email, BOOTSTRAP_ADMIN_PASSWORD: admin.password, ...fake.env, PAYMENT_RECONCILE_INTERVAL_MS: "0", GATEWAY_FAST_LANE: "false", ...env },
      { only: [...SERVICES, ...more] },
    );
    gateways.plain = rig.p.gatewayUrl;
    laneGateway = await createService(apiGateway, { env: { ...rig.p.env, GATEWAY_FAST_LANE: "true" }, defaultMetrics: false });
    gateways.lane = await laneGateway.listen({ port: 0, host: "127.0.0.1" });
    fake.webhookUrl = `${rig.p.gatewayUrl}/api/payments/webhooks/processor`;
    rig.internalPorts = portsOf([srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL]);
    const login = await rig.gw("none", "POST", "/api/users/login", { body: admin });
    who.admin = { id: login.json.user?.id ?? "", token: login.json.accessToken, pm: "" };
    who.alice = await rig.account("alice");
    who.bob = await rig.account("bob");
  }, 600_000);
  afterAll(async () => {
    await laneGateway?.close();
    await rig.p?.close();
    await rig.fake.stop();
    console.info(`[${label}] ${rig.judged} cases judged`);
  }, 120_000);
  beforeEach(() => {
    rig.failures.length = 0;
  });
  return rig;
}
