/**
 * Session 59: the kit's POSTGRES_LOCK_WAIT_MS (a transaction's wait for its lock's turn and the lock,
 * kit datastores/postgres-contention.ts, 10 s by default) was judged against nothing: a stack whose
 * gateway's PROXY_TIMEOUT_MS was 10 s or less let a request wait on a lock past the gateway's wait, the
 * client getting the gateway's 504 while the service went on waiting (and might still write). Now it is
 * a setting of every PostgreSQL user the stack may set, as POSTGRES_POOL_MAX, and catalog
 * ROUTED_POSTGRES_USER_RELATIONS orders it below PROXY_TIMEOUT_MS for each service the gateway routes to
 * (stacks/service-settings.ts crossServiceProblem), naming both keys and the stack.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { catalog, type ServiceDefinition } from "../../catalog";
import { POSTGRES_LOCK_WAIT_MS, ROUTED_POSTGRES_USER_RELATIONS, SERVICE_SETTINGS, settingRelations, usesPostgres } from "../../catalog/service-settings";
import { parseStackConfig, type RawConfig } from "../../stacks/config";
import { crossServiceProblem, serviceSettingsProblem } from "../../stacks/service-settings";
import { datastoreEnv } from "../../services/src/kit";
import { LOCK_WAIT_DEFAULT_MS } from "../../services/src/kit/datastores/postgres-contention";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

type Settings = Record<string, Record<string, number>>;
const problem = (v: Settings, deployed: readonly ServiceDefinition[] = catalog) => crossServiceProblem(v, deployed);
const routed = catalog.filter((s) => s.route !== null && usesPostgres(s)).map((s) => s.name);
const WHY = ROUTED_POSTGRES_USER_RELATIONS[0].why;

/** Every other wait inside a proxied request short enough for a gateway of 10 s: only the lock waits are left to judge. */
const TEN_SECOND_GATEWAY: Settings = {
  "api-gateway": { PROXY_TIMEOUT_MS: 10_000 },
  "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 5_000, ORCH_PREDICT_TIMEOUT_MS: 5_000 },
  "payment-service": { PAYMENT_IDEMPOTENT_WAIT_MS: 5_000, PAYMENT_PROCESSOR_TIMEOUT_MS: 5_000, PAYMENT_CHARGE_DEADLINE_MS: 5_000 },
};
/** `s` with POSTGRES_LOCK_WAIT_MS `ms` in every routed PostgreSQL user. */
const withLockWaits = (s: Settings, ms: number): Settings =>
  Object.fromEntries([...new Set([...Object.keys(s), ...routed])].map((n) => [n, { ...(routed.includes(n) ? { POSTGRES_LOCK_WAIT_MS: ms } : {}), ...s[n] }]));

describe("POSTGRES_LOCK_WAIT_MS below the gateway's PROXY_TIMEOUT_MS", () => {
  it("the kit's schema and default are the catalog's", () => {
    const s = datastoreEnv.postgres.POSTGRES_LOCK_WAIT_MS;
    expect({ default: s.default, minimum: s.minimum, maximum: s.maximum }).toEqual(POSTGRES_LOCK_WAIT_MS);
    expect(LOCK_WAIT_DEFAULT_MS).toBe(POSTGRES_LOCK_WAIT_MS.default);
    expect(POSTGRES_LOCK_WAIT_MS.default).toBeLessThan(SERVICE_SETTINGS["api-gateway"].PROXY_TIMEOUT_MS.default);
  });

  it("is judged for every routed PostgreSQL user, none other (an internal service's callers have timeouts of their own)", () => {
    expect(routed.length).toBeGreaterThan(10);
    // (Against the gateway's timeout: a Kafka consumer's is judged against its session timeout too, kafka-consumer-relations.test.ts.)
    const judged = settingRelations(catalog)
      .filter((r) => "service" in r.smaller && r.smaller.key === "POSTGRES_LOCK_WAIT_MS" && "service" in r.larger && r.larger.key === "PROXY_TIMEOUT_MS")
      .map((r) => ("service" in r.smaller ? r.smaller.service : ""));
    expect(judged).toEqual(routed);
    const internal = catalog.map((s) => (s.name === "notification-service" ? { ...s, route: null } : s));
    // (Its session timeout set above the wait: a Kafka consumer's lock wait is judged against that too.)
    expect(problem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 60_000, KAFKA_SESSION_TIMEOUT_MS: 90_000 } }, internal)).toBeUndefined();
    expect(problem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 60_000 } }, catalog.filter((s) => s.name !== "notification-service"))).toBeUndefined();
  });

  it("refuses a service's lock wait at or over the gateway's timeout, naming both with their values", () => {
    expect(problem({})).toBeUndefined();
    expect(problem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 30_000 } })).toBe(
      `notification-service POSTGRES_LOCK_WAIT_MS (30000) must be below api-gateway PROXY_TIMEOUT_MS (30000, its default): ${WHY}`,
    );
    expect(problem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 29_999 } })).toBeUndefined();
    expect(problem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 25_000 }, "api-gateway": { PROXY_TIMEOUT_MS: 25_000, REQUEST_TIMEOUT_MS: 25_000 }, "ai-orchestrator": { ORCH_EVALUATION_WAIT_MS: 10_000 }, "payment-service": { PAYMENT_IDEMPOTENT_WAIT_MS: 10_000, PAYMENT_PROCESSOR_TIMEOUT_MS: 20_000, PAYMENT_CHARGE_DEADLINE_MS: 20_000 } })).toMatch(
      /^notification-service POSTGRES_LOCK_WAIT_MS \(25000\) must be below api-gateway PROXY_TIMEOUT_MS \(25000\): /,
    );
  });

  it("refuses a gateway shortened to the lock waits' default, until the stack shortens them too", () => {
    // 10 s: the kit's default lock wait; the first routed PostgreSQL user of the catalog is named.
    expect(problem(TEN_SECOND_GATEWAY)).toBe(`${routed[0]} POSTGRES_LOCK_WAIT_MS (10000, its default) must be below api-gateway PROXY_TIMEOUT_MS (10000): ${WHY}`);
    expect(problem(withLockWaits(TEN_SECOND_GATEWAY, 9_999))).toBeUndefined();
    // One left at its default is named.
    const oneLeft = withLockWaits(TEN_SECOND_GATEWAY, 5_000);
    delete oneLeft["ml-predictor"].POSTGRES_LOCK_WAIT_MS;
    expect(problem(oneLeft)).toMatch(/^ml-predictor POSTGRES_LOCK_WAIT_MS \(10000, its default\) must be below api-gateway PROXY_TIMEOUT_MS \(10000\): /);
  });

  it("names both keys and the stack through the stack config, on either runtime; taken and passed when it fits", () => {
    const e = error("prod", { ...k8s, serviceSettings: JSON.stringify({ "order-management": { POSTGRES_LOCK_WAIT_MS: 45_000 } }) });
    expect(e.key).toBe("serviceSettings");
    expect(e.message).toBe(`Invalid configuration trading:serviceSettings on stack 'prod': order-management POSTGRES_LOCK_WAIT_MS (45000) must be below api-gateway PROXY_TIMEOUT_MS (30000, its default): ${WHY}`);
    expect(error("dev", { ...docker, serviceSettings: JSON.stringify(TEN_SECOND_GATEWAY) }).message).toMatch(
      new RegExp(`^Invalid configuration trading:serviceSettings on stack 'dev': ${routed[0]} POSTGRES_LOCK_WAIT_MS \\(10000, its default\\) must be below api-gateway PROXY_TIMEOUT_MS \\(10000\\)`),
    );
    const fitting = withLockWaits(TEN_SECOND_GATEWAY, 8_000);
    expect(parseStackConfig("dev", { ...docker, serviceSettings: JSON.stringify(fitting) }).serviceSettings).toEqual(fitting);
  });

  it("is a setting of PostgreSQL users only, in the kit's range", () => {
    expect(serviceSettingsProblem({ "api-gateway": { POSTGRES_LOCK_WAIT_MS: 5_000 } }, catalog, catalog)).toMatch(/^'POSTGRES_LOCK_WAIT_MS' is not a setting of api-gateway the stack sets/);
    expect(serviceSettingsProblem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 99 } }, catalog, catalog)).toBe(
      "notification-service POSTGRES_LOCK_WAIT_MS must be an integer between 100 and 600000 (the service refuses any other at start), got 99",
    );
    expect(serviceSettingsProblem({ "notification-service": { POSTGRES_LOCK_WAIT_MS: 1_500 } }, catalog, catalog)).toBeUndefined();
  });

  it("holds in every stack file of the repository (Pulumi.<stack>.yaml)", () => {
    const root = join(__dirname, "../..");
    const stacks = readdirSync(root).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f));
    expect(stacks.length).toBeGreaterThanOrEqual(3);
    for (const file of stacks) {
      const config = (parse(readFileSync(join(root, file), "utf8")) as { config?: Record<string, unknown> }).config ?? {};
      const raw: RawConfig = Object.fromEntries(
        Object.entries(config).filter(([k]) => k.startsWith("trading:")).map(([k, v]) => [k.slice("trading:".length), typeof v === "string" ? v : JSON.stringify(v)]),
      );
      const stack = file.slice("Pulumi.".length, -".yaml".length);
      const parsed = parseStackConfig(stack, raw);
      expect(crossServiceProblem(parsed.serviceSettings, catalog), file).toBeUndefined();
    }
  });
});
