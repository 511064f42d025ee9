/**
 * Every service of the registry in this process against the harness's real servers (PostgreSQL,
 * Redis as Dragonfly, Kafka, ClickHouse; Weaviate and ArangoDB are optional everywhere and left
 * unconfigured), each listening on loopback, and the api-gateway in front of them. Used by the
 * hostile-input suite and the fleet metrics test. Consumer groups are unique per platform (the
 * Kafka broker is shared by the test files).
 */
import { randomBytes } from "node:crypto";
import { catalog } from "../../services/src/catalog";
import { createService, type Service } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { freePort, pg } from "../harness";
import { migrateAll } from "./schemas";

export interface Platform {
  services: Map<string, Service<any>>;
  gatewayUrl: string;
  urls: Map<string, string>;
  pool: InstanceType<typeof pg.Pool>;
  env: Record<string, string>;
  close(): Promise<void>;
}

const envVar = (name: string) => `SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`;

export interface PlatformOptions {
  /** Default process metrics on every service's registry (what /metrics serves in production); default false. */
  defaultMetrics?: boolean;
  /** Start only these catalog services (default: every implemented one); the others' routes answer 502 at the gateway. */
  only?: string[];
}

export async function startPlatform(serverEnv: Record<string, string>, extraEnv: Record<string, string> = {}, opts: PlatformOptions = {}): Promise<Platform> {
  const run = randomBytes(3).toString("hex");
  const env: Record<string, string> = {
    ...serverEnv,
    LOG_LEVEL: "silent",
    JWT_SECRET: randomBytes(64).toString("hex"),
    MARKET_SUBSCRIBE: "false",
    RATE_LIMIT_MAX_REQUESTS: "1000000",
    // Datastore probes (/ready; database-service /datastores) get 15 s instead of 2 s: at load 40+
    // on two cores a healthy PostgreSQL took over 2 s to answer, and the probe reported it failing.
    READY_TIMEOUT_MS: "15000",
    DATASTORE_CHECK_TIMEOUT_MS: "15000",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_MS: "500",
    OM_CONSUMER_GROUP: `om-platform-${run}`,
    TE_CONSUMER_GROUP: `te-platform-${run}`,
    PM_CONSUMER_GROUP: `pm-platform-${run}`,
    CM_CONSUMER_GROUP: `cm-platform-${run}`,
    PERF_CONSUMER_GROUP: `perf-platform-${run}`,
    NOTIFY_CONSUMER_GROUP: `notify-platform-${run}`,
    REVENUE_CONSUMER_GROUP: `revenue-platform-${run}`,
    CHAIN_CONSUMER_GROUP: `chain-platform-${run}`,
    USAGE_CONSUMER_GROUP: `usage-platform-${run}`,
    BILLING_CONSUMER_GROUP: `billing-platform-${run}`,
    CANDLES_WRITER_GROUP: `md-platform-${run}`,
    ...extraEnv,
  };
  const pool = await migrateAll(env);

  // Every implemented catalog service, each on a port chosen first so every peer URL is known.
  const names = catalog.map((s) => s.name).filter((n) => registry[n] && (!opts.only || opts.only.includes(n)));
  const ports = new Map<string, number>();
  for (const n of names) ports.set(n, await freePort());
  const urls = new Map([...ports].map(([n, p]) => [n, `http://127.0.0.1:${p}`]));
  Object.assign(env, Object.fromEntries([...urls].map(([n, u]) => [envVar(n), u])));
  const services = new Map<string, Service<any>>();
  for (const name of names) {
    const s = await createService(await registry[name](), { env, defaultMetrics: opts.defaultMetrics ?? false });
    services.set(name, s);
    await s.listen({ port: ports.get(name), host: "127.0.0.1" });
  }
  const gatewayUrl = urls.get("api-gateway")!;

  return {
    services,
    gatewayUrl,
    urls,
    pool,
    env,
    async close() {
      for (const s of [...services.values()].reverse()) await s.close().catch(() => undefined);
      await pool.end();
    },
  };
}
