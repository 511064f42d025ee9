/**
 * Session 52: trading:serviceSettings and trading:postgresMaxConnections (stacks/service-settings.ts).
 * Service variables each in range alone were never judged across services: user-management's
 * ACCESS_TOKEN_TTL_S over the gateway's ACCESS_TOKEN_MAX_AGE_S (every token refused past that age),
 * a wait inside a request over the gateway's PROXY_TIMEOUT_MS (504 first), the gateway's
 * REQUEST_TIMEOUT_MS over the edge's read timeout; and the pools of every replica were never counted
 * against PostgreSQL's max_connections (100 by default: the Docker stack's defaults alone can open 184).
 */
import { describe, expect, it } from "vitest";
import { catalog, KUBERNETES_REPLICA_POSTGRES_POOL, POSTGRES_MEMORY, POSTGRES_MEMORY_GI, postgresMemoryNeed, sizingOf } from "../../catalog";
import { CHARGE_WRITES_MS, EDGE_READ_TIMEOUT_S, POSTGRES_CONNECT_TIMEOUT_MS, POSTGRES_POOL_MAX, SERVICE_SETTINGS, SETTING_RELATIONS, smallerKeys } from "../../catalog/service-settings";
import { parseStackConfig } from "../../stacks/config";
import { crossServiceProblem, POSTGRES_ADMIN_HEADROOM, postgresConnectionNeed, postgresMemoryExcess, postgresPoolDefaults } from "../../stacks/service-settings";
import { commonEnv, datastoreEnv, type ConfigSchema } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { SUBMIT_COMMIT_DEADLINE_DEFAULT_MS, SUBMIT_COMMIT_DEADLINE_MAX_MS } from "../../services/src/trading/submitDeadline";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

const settings = (v: unknown) => JSON.stringify(v);
const usesPostgres = catalog.filter((s) => [...s.requires, ...s.optional].includes("postgres"));
const routedPostgresUsers = usesPostgres.filter((s) => s.route !== null).map((s) => s.name);

describe("trading:serviceSettings", () => {
  it("passes the variables set, by service, and nothing else", () => {
    const c = parseStackConfig("dev", { ...docker, serviceSettings: settings({ "user-management": { ACCESS_TOKEN_TTL_S: 600 }, "payment-service": { POSTGRES_POOL_MAX: 5 } }) });
    expect(c.serviceSettings).toEqual({ "user-management": { ACCESS_TOKEN_TTL_S: 600 }, "payment-service": { POSTGRES_POOL_MAX: 5 } });
    expect(parseStackConfig("dev", docker).serviceSettings).toEqual({});
  });

  it.each([
    [{ nope: {} }, "'nope' is not a service of the catalog"],
    [{ "api-gateway": 5 }, `settings of 'api-gateway' must be an object of variables, e.g. {"api-gateway": {"ACCESS_TOKEN_MAX_AGE_S": 10}}`],
    [{ "api-gateway": { JWT_SECRET: 1 } }, "'JWT_SECRET' is not a setting of api-gateway the stack sets (its settings: ACCESS_TOKEN_MAX_AGE_S, PROXY_TIMEOUT_MS, REQUEST_TIMEOUT_MS, HEALTH_TIMEOUT_MS); the others keep the service's own defaults"],
    // The gateway uses no PostgreSQL: no pool to size.
    [{ "api-gateway": { POSTGRES_POOL_MAX: 5 } }, "'POSTGRES_POOL_MAX' is not a setting of api-gateway the stack sets"],
    [{ "user-management": { ACCESS_TOKEN_TTL_S: 10 } }, "user-management ACCESS_TOKEN_TTL_S must be an integer between 30 and 3600 (the service refuses any other at start), got 10"],
    [{ "user-management": { ACCESS_TOKEN_TTL_S: "600" } }, "user-management ACCESS_TOKEN_TTL_S must be an integer between 30 and 3600 (the service refuses any other at start), got '600'"],
    [{ "user-management": { POSTGRES_POOL_MAX: 0 } }, "user-management POSTGRES_POOL_MAX must be an integer between 1 and 200"],
    // Session 54: the migration job takes database-service's pool and needs two connections of it.
    [{ "database-service": { POSTGRES_POOL_MAX: 1 } }, "database-service POSTGRES_POOL_MAX must be at least 2, got 1: its migration job takes the service's pool, holds its run lock on one connection and migrates on another (with 1 it fails waiting for the second)"],
  ])("refuses %j naming serviceSettings and the stack", (value, message) => {
    const e = error("dev", { ...docker, serviceSettings: settings(value) });
    expect(e.key).toBe("serviceSettings");
    expect(e.message).toContain(`Invalid configuration trading:serviceSettings on stack 'dev': ${message}`);
  });

  // Session 53: hostile values of the waits the stack judges, each a ConfigError naming the key and the
  // stack (1e309 parses as Infinity: it was printed "got null"; a NUL from "\u0000" was printed raw).
  const between = (service: string, key: string) => {
    const b = (SERVICE_SETTINGS as Record<string, Record<string, { minimum: number; maximum: number }>>)[service][key];
    return `${service} ${key} must be an integer between ${b.minimum} and ${b.maximum} (the service refuses any other at start), got `;
  };
  const waits = [
    ["payment-service", "PAYMENT_CHARGE_DEADLINE_MS"],
    ["payment-service", "PAYMENT_PROCESSOR_TIMEOUT_MS"],
    ["payment-service", "PAYMENT_CHARGE_LOCK_WAIT_MS"],
    ["ai-orchestrator", "ORCH_PREDICT_TIMEOUT_MS"],
    ["ai-orchestrator", "ORCH_REGIMES_TIMEOUT_MS"],
    ["order-management", "OM_SUBMIT_DEADLINE_MS"],
    ["database-service", "DATASTORE_CHECK_TIMEOUT_MS"],
    ["api-gateway", "HEALTH_TIMEOUT_MS"],
  ] as const;
  it.each(waits)("refuses hostile values of %s %s naming serviceSettings and the stack", (service, key) => {
    const refused = (json: string) => {
      const e = error("dev", { ...docker, serviceSettings: `{"${service}": {"${key}": ${json}}}` });
      expect(e.key).toBe("serviceSettings");
      expect(e.message).toMatch(/^Invalid configuration trading:serviceSettings on stack 'dev': /);
      expect(e.message).not.toMatch(/[\u0000-\u001f]/);
      return e.message.slice("Invalid configuration trading:serviceSettings on stack 'dev': ".length);
    };
    expect(refused("0")).toBe(`${between(service, key)}0`);
    expect(refused("-1")).toBe(`${between(service, key)}-1`);
    expect(refused("1e309")).toBe(`${between(service, key)}Infinity`);
    expect(refused("2.5")).toBe(`${between(service, key)}2.5`);
    expect(refused('"2000"')).toBe(`${between(service, key)}'2000'`);
    expect(refused('"\\u0000"')).toBe(`${between(service, key)}'\\u0000'`);
    expect(refused("null")).toBe(`${between(service, key)}null`);
    expect(refused("[2000]")).toBe(`${between(service, key)}[2000]`);
    // Not JSON at all: the object is refused whole.
    expect(refused("NaN")).toMatch(/^must be a YAML\/JSON object/);
  });
  it("refuses a variable name carrying a NUL, printed escaped", () => {
    const e = error("dev", { ...docker, serviceSettings: '{"payment-service": {"PAYMENT_CHARGE_DEADLINE_MS\\u0000": 20000}}' });
    expect(e.message).toContain("'PAYMENT_CHARGE_DEADLINE_MS\\u0000' is not a setting of payment-service the stack sets");
    expect(e.message).not.toMatch(/[\u0000-\u001f]/);
  });

  it("refuses a service that is not deployed (its settings would apply to nothing)", () => {
    expect(error("dev", { ...docker, disabledServices: "ai-chain-analytics,ai-orchestrator", serviceSettings: settings({ "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 1000 } }) }).message).toContain(
      "'ai-orchestrator' is not deployed (disabledServices, or a datastore it requires is off)",
    );
  });
});

describe("cross-service orders (before: checked nowhere; each service took its own value)", () => {
  it("refuses user-management's ACCESS_TOKEN_TTL_S over the gateway's ACCESS_TOKEN_MAX_AGE_S, naming both, their values and the stack", () => {
    expect(error("prod", { ...k8s, serviceSettings: settings({ "user-management": { ACCESS_TOKEN_TTL_S: 1800 }, "api-gateway": { ACCESS_TOKEN_MAX_AGE_S: 900 } }) }).message).toBe(
      "Invalid configuration trading:serviceSettings on stack 'prod': user-management ACCESS_TOKEN_TTL_S (1800) must be at most api-gateway ACCESS_TOKEN_MAX_AGE_S (900): the gateway refuses an access token older than its ACCESS_TOKEN_MAX_AGE_S: every token would be refused for the rest of its life",
    );
    // One side left to its default is judged at the default, and said so.
    expect(error("dev", { ...docker, serviceSettings: settings({ "api-gateway": { ACCESS_TOKEN_MAX_AGE_S: 600 } }) }).message).toContain(
      "user-management ACCESS_TOKEN_TTL_S (900, its default) must be at most api-gateway ACCESS_TOKEN_MAX_AGE_S (600)",
    );
    expect(parseStackConfig("dev", { ...docker, serviceSettings: settings({ "user-management": { ACCESS_TOKEN_TTL_S: 600 }, "api-gateway": { ACCESS_TOKEN_MAX_AGE_S: 600 } }) })).toBeTruthy();
  });

  it("refuses a wait inside a request not below the gateway's PROXY_TIMEOUT_MS, and REQUEST_TIMEOUT_MS over the edge's read timeout", () => {
    expect(problem({ "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 30_000 } })).toMatch(/^ai-orchestrator ORCH_EVALUATION_WAIT_MS \(30000\) must be below api-gateway PROXY_TIMEOUT_MS \(30000, its default\): /);
    expect(problem({ "payment-service": { PAYMENT_IDEMPOTENT_WAIT_MS: 20_000 }, "api-gateway": { PROXY_TIMEOUT_MS: 20_000 } })).toMatch(/^ai-orchestrator ORCH_EVALUATION_WAIT_MS \(20000, its default\) must be below api-gateway PROXY_TIMEOUT_MS \(20000\)/);
    expect(problem({ "payment-service": { PAYMENT_IDEMPOTENT_WAIT_MS: 20_000 }, "api-gateway": { PROXY_TIMEOUT_MS: 20_000 }, "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 10_000 } })).toMatch(
      /^payment-service PAYMENT_IDEMPOTENT_WAIT_MS \(20000\) must be below api-gateway PROXY_TIMEOUT_MS \(20000\)/,
    );
    expect(problem({ "api-gateway": { REQUEST_TIMEOUT_MS: 60_000, PROXY_TIMEOUT_MS: 60_000 } })).toBe(
      `api-gateway REQUEST_TIMEOUT_MS (60000) must be at most the edge's read timeout (${EDGE_READ_TIMEOUT_S} s: Nginx proxy_read_timeout, the Ingress's proxy-read-timeout): the edge stops waiting for the gateway then and answers 504 itself, without the platform's error body or the request's id`,
    );
    expect(problem({ "api-gateway": { PROXY_TIMEOUT_MS: 20_000, REQUEST_TIMEOUT_MS: 10_000 } })).toMatch(/^api-gateway PROXY_TIMEOUT_MS \(20000\) must be at most api-gateway REQUEST_TIMEOUT_MS \(10000\)/);
  });

  const problem = (v: unknown) => crossServiceProblem(v as Record<string, Record<string, number>>, catalog);
  /** `s` with POSTGRES_LOCK_WAIT_MS `ms` in every routed PostgreSQL user (session 59: a short gateway needs shorter lock waits too). */
  const withLockWaits = (s: Record<string, Record<string, number>>, ms: number) =>
    Object.fromEntries([...new Set([...Object.keys(s), ...routedPostgresUsers])].map((n) => [n, { ...(routedPostgresUsers.includes(n) ? { POSTGRES_LOCK_WAIT_MS: ms } : {}), ...s[n] }]));

  // Session 53: the SDK's retries made a charge's worst case 70 s at the defaults (3 x 20 s and 10 s of
  // sleeps), past the gateway's 30 s; now one deadline bounds the call, and the stack judges it.
  it("refuses a card charge's lock wait and deadline that do not end before the gateway's PROXY_TIMEOUT_MS, naming every part and the sum", () => {
    const defaults = SERVICE_SETTINGS["payment-service"];
    expect(defaults.PAYMENT_CHARGE_LOCK_WAIT_MS.default + defaults.PAYMENT_CHARGE_DEADLINE_MS.default + CHARGE_WRITES_MS).toBeLessThan(SERVICE_SETTINGS["api-gateway"].PROXY_TIMEOUT_MS.default);
    expect(problem({ "payment-service": { PAYMENT_CHARGE_DEADLINE_MS: 27_000 } })).toBe(
      `payment-service PAYMENT_CHARGE_LOCK_WAIT_MS (2000, its default) + payment-service PAYMENT_CHARGE_DEADLINE_MS (27000) + the charge's own writes (${CHARGE_WRITES_MS}) = 30000 must be below api-gateway PROXY_TIMEOUT_MS (30000, its default): a card charge waits for a lock connection, then for the processor until its deadline (the SDK's retries inside it): the gateway would answer 504 for a charge the processor made`,
    );
    expect(problem({ "payment-service": { PAYMENT_CHARGE_DEADLINE_MS: 26_999 } })).toBeUndefined();
    // A longer lock wait alone, or a shorter gateway, breaks it too.
    expect(problem({ "payment-service": { PAYMENT_CHARGE_LOCK_WAIT_MS: 5_000 } })).toMatch(/^payment-service PAYMENT_CHARGE_LOCK_WAIT_MS \(5000\) \+ payment-service PAYMENT_CHARGE_DEADLINE_MS \(25000, its default\) \+ the charge's own writes \(1000\) = 31000 must be below/);
    expect(problem({ "api-gateway": { PROXY_TIMEOUT_MS: 25_000 }, "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 10_000 }, "payment-service": { PAYMENT_IDEMPOTENT_WAIT_MS: 10_000 } })).toMatch(/= 28000 must be below api-gateway PROXY_TIMEOUT_MS \(25000\)/);
    // Every attempt runs inside the deadline: one longer than it is refused (the service's start check says the same).
    expect(problem({ "payment-service": { PAYMENT_PROCESSOR_TIMEOUT_MS: 30_000 } })).toMatch(/^payment-service PAYMENT_PROCESSOR_TIMEOUT_MS \(30000\) must be at most payment-service PAYMENT_CHARGE_DEADLINE_MS \(25000, its default\): /);
    expect(problem({ "payment-service": { PAYMENT_PROCESSOR_TIMEOUT_MS: 10_000, PAYMENT_CHARGE_DEADLINE_MS: 10_000 } })).toBeUndefined();
  });

  // Session 56: the lock wait at or over the lock pool's own bound (the making's) was ended by the pool's timeout first.
  it("refuses payment-service's PAYMENT_CHARGE_LOCK_WAIT_MS at or over POSTGRES_CONNECT_TIMEOUT_MS (the kit's default), naming both and the stack", () => {
    // A short deadline leaves the gateway's budget room for a long lock wait: only the connect bound refuses it.
    const roomy = { PAYMENT_PROCESSOR_TIMEOUT_MS: 1_000, PAYMENT_CHARGE_DEADLINE_MS: 1_000 };
    expect(problem({ "payment-service": { ...roomy, PAYMENT_CHARGE_LOCK_WAIT_MS: POSTGRES_CONNECT_TIMEOUT_MS.default } })).toMatch(
      /^payment-service PAYMENT_CHARGE_LOCK_WAIT_MS \(10000\) must be below payment-service POSTGRES_CONNECT_TIMEOUT_MS \(10000, the kit's default: no stack sets it\): a charge's wait for a lock connection runs inside the pool's own bound/,
    );
    expect(problem({ "payment-service": { ...roomy, PAYMENT_CHARGE_LOCK_WAIT_MS: 9_999 } })).toBeUndefined();
    const e = error("prod", { ...k8s, serviceSettings: settings({ "payment-service": { ...roomy, PAYMENT_CHARGE_LOCK_WAIT_MS: 20_000 } }) });
    expect(e.key).toBe("serviceSettings");
    expect(e.message).toMatch(/^Invalid configuration trading:serviceSettings on stack 'prod': payment-service PAYMENT_CHARGE_LOCK_WAIT_MS \(20000\) must be below payment-service POSTGRES_CONNECT_TIMEOUT_MS/);
  });

  it("refuses every other service's wait inside a request the gateway proxies that does not end before PROXY_TIMEOUT_MS", () => {
    // ai-orchestrator: the prediction, then a symbol's similar regimes, inside POST /strategies/:id/evaluate.
    expect(problem({ "ai-orchestrator": { ORCH_PREDICT_TIMEOUT_MS: 28_000 } })).toMatch(
      /^ai-orchestrator ORCH_PREDICT_TIMEOUT_MS \(28000\) \+ ai-orchestrator ORCH_REGIMES_TIMEOUT_MS \(2000, its default\) = 30000 must be below api-gateway PROXY_TIMEOUT_MS \(30000, its default\): an evaluation asked through the API /,
    );
    expect(problem({ "ai-orchestrator": { ORCH_PREDICT_TIMEOUT_MS: 27_999 } })).toBeUndefined();
    expect(problem({ "ai-orchestrator": { ORCH_PREDICT_TIMEOUT_MS: 600_000 } })).toMatch(/= 602000 must be below api-gateway PROXY_TIMEOUT_MS/);
    // order-management's submit deadline (at most 3 s) against a short gateway.
    const shortGateway = { "api-gateway": { PROXY_TIMEOUT_MS: 2_000 }, "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 1_000, ORCH_PREDICT_TIMEOUT_MS: 500, ORCH_REGIMES_TIMEOUT_MS: 500 }, "payment-service": { PAYMENT_IDEMPOTENT_WAIT_MS: 1_000, PAYMENT_CHARGE_LOCK_WAIT_MS: 100, PAYMENT_PROCESSOR_TIMEOUT_MS: 100, PAYMENT_CHARGE_DEADLINE_MS: 500 } };
    expect(problem(withLockWaits(shortGateway, 1_000))).toMatch(/^order-management OM_SUBMIT_DEADLINE_MS \(2000, its default\) must be below api-gateway PROXY_TIMEOUT_MS \(2000\): an order's submit may commit until its deadline/);
    expect(problem(withLockWaits({ ...shortGateway, "order-management": { OM_SUBMIT_DEADLINE_MS: 1_500 } }, 1_000))).toMatch(/^database-service DATASTORE_CHECK_TIMEOUT_MS \(2000, its default\) must be below api-gateway PROXY_TIMEOUT_MS \(2000\): GET \/datastores /);
    expect(problem(withLockWaits({ ...shortGateway, "order-management": { OM_SUBMIT_DEADLINE_MS: 1_500 }, "database-service": { DATASTORE_CHECK_TIMEOUT_MS: 1_500 } }, 1_000))).toBeUndefined();
    // The gateway's own /api/health fan-out, inside its request budget.
    expect(problem({ "api-gateway": { HEALTH_TIMEOUT_MS: 30_000 } })).toMatch(/^api-gateway HEALTH_TIMEOUT_MS \(30000\) must be below api-gateway REQUEST_TIMEOUT_MS \(30000, its default\): /);
  });

  it("names both keys and the stack through the stack config, on either runtime", () => {
    const e = error("prod", { ...k8s, serviceSettings: settings({ "payment-service": { PAYMENT_CHARGE_DEADLINE_MS: 40_000 }, "api-gateway": { PROXY_TIMEOUT_MS: 30_000 } }) });
    expect(e.key).toBe("serviceSettings");
    expect(e.message).toMatch(/^Invalid configuration trading:serviceSettings on stack 'prod': payment-service PAYMENT_CHARGE_LOCK_WAIT_MS \(2000, its default\) \+ payment-service PAYMENT_CHARGE_DEADLINE_MS \(40000\)/);
    expect(error("dev", { ...docker, serviceSettings: settings({ "ai-orchestrator": { ORCH_PREDICT_TIMEOUT_MS: 60_000 } }) }).message).toMatch(/^Invalid configuration trading:serviceSettings on stack 'dev': ai-orchestrator ORCH_PREDICT_TIMEOUT_MS \(60000\)/);
    // Settable, passed as the others: consistent values are taken.
    expect(parseStackConfig("dev", { ...docker, serviceSettings: settings({ "payment-service": { PAYMENT_PROCESSOR_TIMEOUT_MS: 8_000, PAYMENT_CHARGE_DEADLINE_MS: 20_000 } }) }).serviceSettings).toEqual({ "payment-service": { PAYMENT_PROCESSOR_TIMEOUT_MS: 8_000, PAYMENT_CHARGE_DEADLINE_MS: 20_000 } });
  });

  it("holds at every default, and skips an order whose service is not deployed", () => {
    expect(crossServiceProblem({}, catalog)).toBeUndefined();
    const withoutOrchestrator = catalog.filter((s) => s.name !== "ai-orchestrator");
    expect(crossServiceProblem({ "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 60_000 } }, withoutOrchestrator)).toBeUndefined();
  });

  it("states each setting once: the services' schemas take the catalog's default and range", async () => {
    let checked = 0;
    for (const [service, vars] of Object.entries(SERVICE_SETTINGS)) {
      const def = catalog.find((s) => s.name === service)!;
      const schema: ConfigSchema = { ...commonEnv(def), ...((await registry[service as keyof typeof registry]()).config ?? {}) };
      for (const [key, bounds] of Object.entries(vars)) {
        expect({ default: schema[key].default, minimum: schema[key].minimum, maximum: schema[key].maximum }, `${service} ${key}`).toEqual(bounds);
        checked++;
      }
    }
    expect(checked).toBe(15);
    // order-management's deadline is also trading/submitDeadline.ts's (ai-orchestrator's recovery window).
    expect(SERVICE_SETTINGS["order-management"].OM_SUBMIT_DEADLINE_MS).toMatchObject({ default: SUBMIT_COMMIT_DEADLINE_DEFAULT_MS, maximum: SUBMIT_COMMIT_DEADLINE_MAX_MS });
    expect({ default: datastoreEnv.postgres.POSTGRES_POOL_MAX.default, minimum: datastoreEnv.postgres.POSTGRES_POOL_MAX.minimum, maximum: datastoreEnv.postgres.POSTGRES_POOL_MAX.maximum }).toEqual(POSTGRES_POOL_MAX);
    expect({ default: datastoreEnv.postgres.POSTGRES_CONNECT_TIMEOUT_MS.default, minimum: datastoreEnv.postgres.POSTGRES_CONNECT_TIMEOUT_MS.minimum, maximum: datastoreEnv.postgres.POSTGRES_CONNECT_TIMEOUT_MS.maximum }).toEqual(POSTGRES_CONNECT_TIMEOUT_MS);
    // Every relation names settings the catalog declares.
    for (const r of SETTING_RELATIONS) {
      for (const k of smallerKeys(r)) expect((SERVICE_SETTINGS as Record<string, Record<string, unknown>>)[k.service]?.[k.key], k.key).toBeDefined();
      if ("service" in r.larger) expect((SERVICE_SETTINGS as Record<string, Record<string, unknown>>)[r.larger.service]?.[r.larger.key], r.larger.key).toBeDefined();
    }
  });
});

describe("PostgreSQL connections against max_connections", () => {
  it.each([
    ["-1", "must be between 0 and 10000, got -1"],
    ["NaN", "must be an integer, got 'NaN'"],
    ["1e309", "must be an integer, got '1e309'"],
    ["2.5", "must be an integer, got '2.5'"],
    ["many", "must be an integer, got 'many'"],
    ["\u0000", "must be an integer, got '\\u0000'"],
    ["500\u0000", "must be an integer, got '500\\u0000'"],
    ["99999999999999999999", "must be between 0 and 10000"],
  ])("refuses postgresMaxConnections %j naming the key and the stack", (value, message) => {
    const e = error("prod", { ...k8s, postgresMaxConnections: value });
    expect(e.key).toBe("postgresMaxConnections");
    expect(e.message).toContain(`Invalid configuration trading:postgresMaxConnections on stack 'prod': ${message}`);
    expect(e.message).not.toMatch(/[\u0000-\u001f]/);
  });
  it("takes 0 as: sized to what the stack can open at once", () => {
    expect(parseStackConfig("dev", { ...docker, postgresMaxConnections: "0" }).postgresMaxConnections).toBe(parseStackConfig("dev", docker).postgresMaxConnections);
  });

  it("counts every pool of every replica, payment-service's lock pool, the jobs and the admin headroom (Docker: one replica each)", () => {
    const c = parseStackConfig("dev", docker);
    const jobs = usesPostgres.filter((s) => s.preDeployJob).length + usesPostgres.filter((s) => s.scheduledJob).length;
    const expected = usesPostgres.length * POSTGRES_POOL_MAX.default + SERVICE_SETTINGS["payment-service"].PAYMENT_CHARGE_LOCK_CONNECTIONS.default + jobs * POSTGRES_POOL_MAX.default + POSTGRES_ADMIN_HEADROOM;
    expect(c.postgresMaxConnections).toBe(expected);
    // More than PostgreSQL's own default of 100, which every stack ran with before.
    expect(expected).toBe(184);
  });

  it("counts, on Kubernetes, each autoscaler's most replicas and a rollout's surge pod with a replica's pool (a singleton's its own), and the backups", () => {
    const c = parseStackConfig("prod", k8s);
    const replicas = (s: (typeof catalog)[number]) => (s.singleton ? 1 : sizingOf(s).scaling.maxReplicas + 1);
    const pool = (s: (typeof catalog)[number]) => (s.singleton ? POSTGRES_POOL_MAX.default : KUBERNETES_REPLICA_POSTGRES_POOL);
    const pools = usesPostgres.reduce((n, s) => n + replicas(s) * (pool(s) + (s.name === "payment-service" ? 4 : 0)), 0);
    // The migration job (database-service) and the retraining job (ml-predictor) with their services' pools.
    expect(c.postgresMaxConnections).toBe(pools + 2 * KUBERNETES_REPLICA_POSTGRES_POOL + 3 + POSTGRES_ADMIN_HEADROOM);
    expect(postgresConnectionNeed("kubernetes", catalog, c.serviceReplicas, {}).total).toBe(c.postgresMaxConnections);
    // Session 54: 951 at a pool of 10 a replica, against a PostgreSQL of 1 GiB.
    expect(c.postgresMaxConnections).toBe(335);
  });

  it("takes a pool of 2 for the service with the migration job, and 1 for another", () => {
    expect(parseStackConfig("prod", { ...k8s, serviceSettings: settings({ "database-service": { POSTGRES_POOL_MAX: 2 }, "user-management": { POSTGRES_POOL_MAX: 1 } }) }).serviceSettings).toEqual({
      "database-service": { POSTGRES_POOL_MAX: 2 },
      "user-management": { POSTGRES_POOL_MAX: 1 },
    });
  });

  it("passes a Kubernetes replica's pool to every horizontally scaled PostgreSQL user where the stack sets none, on Kubernetes only", () => {
    const c = parseStackConfig("prod", k8s);
    const scaled = usesPostgres.filter((s) => !s.singleton).map((s) => s.name);
    expect(Object.keys(c.postgresPoolDefaults).sort()).toEqual([...scaled].sort());
    for (const name of scaled) expect(c.postgresPoolDefaults[name], name).toBe(KUBERNETES_REPLICA_POSTGRES_POOL);
    // A singleton keeps the service's own default (its one replica carries all the load).
    expect(c.postgresPoolDefaults["trading-engine"]).toBeUndefined();
    // The stack's value wins, and is what is counted.
    const set = parseStackConfig("prod", { ...k8s, serviceSettings: settings({ "order-management": { POSTGRES_POOL_MAX: 6 } }) });
    expect(set.postgresPoolDefaults["order-management"]).toBeUndefined();
    expect(set.postgresMaxConnections).toBe(c.postgresMaxConnections + 7 * (6 - KUBERNETES_REPLICA_POSTGRES_POOL));
    expect(parseStackConfig("dev", docker).postgresPoolDefaults).toEqual({});
    expect(postgresPoolDefaults("docker", catalog, {})).toEqual({});
  });

  it("follows the pools the stack sets, and refuses a postgresMaxConnections below the need naming it, the keys that make the need and the stack", () => {
    const smaller = parseStackConfig("dev", { ...docker, serviceSettings: settings({ "payment-service": { POSTGRES_POOL_MAX: 2, PAYMENT_CHARGE_LOCK_CONNECTIONS: 1 } }) });
    expect(smaller.postgresMaxConnections).toBe(184 - (10 - 2) - (4 - 1));
    expect(parseStackConfig("dev", { ...docker, postgresMaxConnections: "300" }).postgresMaxConnections).toBe(300);
    expect(parseStackConfig("dev", { ...docker, postgresMaxConnections: "184" }).postgresMaxConnections).toBe(184);
    const e = error("dev", { ...docker, postgresMaxConnections: "100" });
    expect(e.key).toBe("postgresMaxConnections");
    expect(e.message).toMatch(/^Invalid configuration trading:postgresMaxConnections on stack 'dev': 100 is below the PostgreSQL connections this stack can open at once, 184: /);
    expect(e.message).toContain("payment-service 1 x 14 (POSTGRES_POOL_MAX + PAYMENT_CHARGE_LOCK_CONNECTIONS; replicas)");
    expect(e.message).toContain("database-service's migration job 10");
    expect(e.message).toContain("or lower POSTGRES_POOL_MAX in trading:serviceSettings or the replicas (trading:replicas, serviceReplicas)");
    // On Kubernetes the replicas count only above the autoscaler's maximum: the refusal names what makes the need there.
    const k8sNeed = parseStackConfig("prod", k8s).postgresMaxConnections;
    const onK8s = error("prod", { ...k8s, serviceReplicas: settings({ "user-management": 1 }), postgresMaxConnections: String(k8sNeed - 1) });
    expect(onK8s.key).toBe("postgresMaxConnections");
    expect(onK8s.message).toMatch(new RegExp(`^Invalid configuration trading:postgresMaxConnections on stack 'prod': ${k8sNeed - 1} is below the PostgreSQL connections this stack can open at once, ${k8sNeed}: `));
    expect(onK8s.message).toContain("user-management 7 x 3 (POSTGRES_POOL_MAX; the autoscaler's most replicas and a rollout's surge pod)");
    expect(onK8s.message).toContain("or lower POSTGRES_POOL_MAX in trading:serviceSettings or the autoscalers' most replicas (maxReplicas in catalog/sizing.ts; trading:replicas and serviceReplicas count only above them)");
    // No PostgreSQL, nothing to count (every service needing it off too).
    const off = usesPostgres.filter((s) => s.requires.includes("postgres")).map((s) => s.name);
    const callers = catalog.filter((s) => !s.entryPoint && s.calls.some((c) => off.includes(c))).map((s) => s.name);
    expect(parseStackConfig("dev", { ...docker, postgresEnabled: "false", disabledServices: [...new Set([...off, ...callers])].join(",") }).postgresMaxConnections).toBe(0);
  });
});

describe("PostgreSQL's memory against its max_connections (session 54)", () => {
  const scaled = usesPostgres.filter((s) => !s.singleton).map((s) => s.name);
  /** Every horizontally scaled service at the pool of 10 a replica had on Kubernetes before: 951 connections. */
  const poolsOfTen = settings(Object.fromEntries(scaled.map((name) => [name, { POSTGRES_POOL_MAX: 10 }])));

  it("counts each connection a backend's own memory and one work_mem, the shared memory, the autovacuum workers and the server's processes", () => {
    const none = postgresMemoryNeed(0);
    const m = POSTGRES_MEMORY;
    expect(none.totalMiB).toBe(m.sharedBuffersMiB + m.otherSharedMiB + m.autovacuumWorkers * (m.backendMiB + m.maintenanceWorkMemMiB) + m.backgroundProcesses * m.backendMiB);
    expect(none.totalMiB).toBe(378);
    // 10 MiB a connection, and 52 KiB of shared memory a slot (rounded up to whole MiB).
    expect(postgresMemoryNeed(100).totalMiB).toBe(378 + 1_000 + 6);
    expect(postgresMemoryNeed(1_000).totalMiB).toBe(378 + 10_000 + 51);
    expect(postgresMemoryNeed(184).parts).toEqual([
      "184 connections x 10 MiB (a backend's own 6 MiB and one work_mem of 4 MiB) = 1840 MiB",
      "shared memory 148 MiB (shared_buffers 128 MiB)",
      "3 autovacuum workers x 70 MiB (maintenance_work_mem 64 MiB) = 210 MiB",
      "5 server processes x 6 MiB = 30 MiB",
    ]);
    expect(postgresMemoryExcess(369, 4)).toBeUndefined();
    expect(postgresMemoryExcess(370, 4)?.totalMiB).toBe(4_097);
    // The size before session 54 held 64 connections.
    expect(postgresMemoryExcess(64, 1)).toBeUndefined();
    expect(postgresMemoryExcess(65, 1)).toBeDefined();
  });

  it("passes the catalog's defaults on both targets: prod's 335 connections and dev's 184 fit the default 4 GiB", () => {
    const prod = parseStackConfig("prod", k8s);
    const dev = parseStackConfig("dev", docker);
    expect(prod.postgresMemoryGi).toBe(POSTGRES_MEMORY_GI);
    expect(dev.postgresMemoryGi).toBe(POSTGRES_MEMORY_GI);
    expect(postgresMemoryNeed(prod.postgresMaxConnections).totalMiB).toBe(3_746);
    expect(postgresMemoryNeed(dev.postgresMaxConnections).totalMiB).toBe(2_228);
  });

  it("refuses a stack whose sized max_connections outgrows the memory, naming postgresMemoryGi, the stack, the count, the memory and what lowers it", () => {
    const e = error("prod", { ...k8s, serviceSettings: poolsOfTen });
    expect(e.key).toBe("postgresMemoryGi");
    expect(e.message).toMatch(/^Invalid configuration trading:postgresMemoryGi on stack 'prod': PostgreSQL's max_connections of 951 \(sized to what this stack can open at once: /);
    expect(e.message).toContain("user-management 7 x 10 (POSTGRES_POOL_MAX; the autoscaler's most replicas and a rollout's surge pod)");
    expect(e.message).toContain(`lets its memory reach 9937 MiB (951 connections x 10 MiB (a backend's own 6 MiB and one work_mem of 4 MiB) = 9510 MiB, shared memory 187 MiB (shared_buffers 128 MiB), `);
    expect(e.message).toContain("above its memory limit of 4 GiB (trading:postgresMemoryGi, 4096 MiB)");
    expect(e.message).toContain("raise trading:postgresMemoryGi to 10, or lower POSTGRES_POOL_MAX in trading:serviceSettings or the autoscalers' most replicas (maxReplicas in catalog/sizing.ts");
    // Memory for them: accepted, and the server gets it.
    const roomy = parseStackConfig("prod", { ...k8s, serviceSettings: poolsOfTen, postgresMemoryGi: "10" });
    expect(roomy.postgresMaxConnections).toBe(951);
    expect(roomy.postgresMemoryGi).toBe(10);
    // Docker's 184 do not fit the 1 GiB PostgreSQL had before.
    const small = error("dev", { ...docker, postgresMemoryGi: "1" });
    expect(small.key).toBe("postgresMemoryGi");
    expect(small.message).toMatch(/^Invalid configuration trading:postgresMemoryGi on stack 'dev': PostgreSQL's max_connections of 184 \(sized to what this stack can open at once: .*\) lets its memory reach 2228 MiB .*raise trading:postgresMemoryGi to 3, or lower POSTGRES_POOL_MAX in trading:serviceSettings or the replicas \(trading:replicas, serviceReplicas\)$/);
  });

  it("refuses a postgresMaxConnections set above what the memory holds, naming it and the least it may be", () => {
    const e = error("dev", { ...docker, postgresMaxConnections: "2000" });
    expect(e.key).toBe("postgresMaxConnections");
    expect(e.message).toMatch(/^Invalid configuration trading:postgresMaxConnections on stack 'dev': PostgreSQL's max_connections of 2000 \(as set\) lets its memory reach 20480 MiB /);
    expect(e.message).toContain("raise trading:postgresMemoryGi to 20, lower trading:postgresMaxConnections (to no less than 184, what the stack can open at once), or lower POSTGRES_POOL_MAX");
    expect(parseStackConfig("prod", { ...k8s, postgresMaxConnections: "369" }).postgresMaxConnections).toBe(369);
    expect(error("prod", { ...k8s, postgresMaxConnections: "370" }).key).toBe("postgresMaxConnections");
  });

  it.each([
    ["0", "must be between 1 and 1024, got 0"],
    ["1025", "must be between 1 and 1024, got 1025"],
    ["4.5", "must be an integer, got '4.5'"],
    ["4Gi", "must be an integer, got '4Gi'"],
  ])("refuses postgresMemoryGi %j naming the key and the stack", (value, message) => {
    const e = error("prod", { ...k8s, postgresMemoryGi: value });
    expect(e.key).toBe("postgresMemoryGi");
    expect(e.message).toContain(`Invalid configuration trading:postgresMemoryGi on stack 'prod': ${message}`);
  });

  it("judges no memory without PostgreSQL", () => {
    const off = usesPostgres.filter((s) => s.requires.includes("postgres")).map((s) => s.name);
    const callers = catalog.filter((s) => !s.entryPoint && s.calls.some((c) => off.includes(c))).map((s) => s.name);
    const c = parseStackConfig("dev", { ...docker, postgresEnabled: "false", postgresMemoryGi: "1", disabledServices: [...new Set([...off, ...callers])].join(",") });
    expect(c.postgresMaxConnections).toBe(0);
    expect(c.postgresPoolDefaults).toEqual({});
  });
});
