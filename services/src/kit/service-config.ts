/**
 * A service's configuration as createService (./service.ts) reads it at start: the variables every
 * service reads (commonEnv), its own schema's, its datastores' and its peers' URLs, all validated up
 * front so one ConfigError names every problem at once.
 */
import { Type } from "@sinclair/typebox";
import type { ServiceDefinition } from "../catalog";
import { ConfigError, HOST_PATTERN, loadConfig, logLevelEnv, type ConfigOf, type ConfigSchema } from "./config";
import { loadDatastoreConfig } from "./datastores";
import { checkPeerUrls } from "./peers";
import { DEFAULT_JSON_MAX_DEPTH, parseTrustProxy } from "./request-guards";

/** Variables every service reads (in addition to its datastores' and its own). */
export function commonEnv(def: ServiceDefinition) {
  return {
    // 1 at least: PORT=0 made the service listen on a port the kernel picked, which no peer, probe or
    // gateway route (all built from the catalog's port) would ever reach.
    PORT: Type.Integer({ default: def.port, minimum: 1, maximum: 65535, description: "the TCP port to listen on, 1 to 65535 (the catalog's port by default)" }),
    HOST: Type.String({ default: "0.0.0.0", pattern: HOST_PATTERN, description: "a host name or IP address to listen on" }),
    LOG_LEVEL: logLevelEnv(),
    /** Largest accepted request body; larger ones get 413. */
    BODY_LIMIT_BYTES: Type.Integer({ default: 1_048_576, minimum: 1_024, maximum: 100 * 1_048_576 }),
    /** Bound on graceful shutdown (drain in-flight requests, close pools). */
    SHUTDOWN_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 600_000 }),
    /**
     * After SIGTERM, how long the service keeps serving before it stops listening: /ready answers
     * 503 and each response closes its connection, so load balancers (a Kubernetes Service's
     * endpoints, the ingress) and keep-alive pools (the gateway's) move to the other replicas first.
     * Without it a replica being deleted under load answered 503 to a request that raced its close.
     */
    SHUTDOWN_DRAIN_MS: Type.Integer({ default: 0, minimum: 0, maximum: 60_000 }),
    /** Timeout of each dependency check of /ready. */
    READY_TIMEOUT_MS: Type.Integer({ default: 2_000, minimum: 50, maximum: 60_000 }),
    /**
     * Who may set X-Forwarded-For: comma-separated addresses/CIDRs of the reverse proxy (Nginx, the
     * ingress controller). Unset: nobody (the peer address is the client). Hop counts and "true" are refused.
     */
    TRUST_PROXY: Type.Optional(Type.String()),
    /** Takes global unicast IPv6 entries (2000::/3) in TRUST_PROXY: an IPv6 pod network of public addresses (EKS IPv6, dual-stack). */
    TRUST_PROXY_GLOBAL_IPV6: Type.Boolean({ default: false }),
    /**
     * The whole request, headers and body, must arrive within this (else 408 and the connection
     * closes). Fastify's default is no limit: a client dripping a byte a second held a connection
     * and its buffers for as long as it liked (measured: still open after 400 s). Receiving only:
     * the time the service takes to answer is not counted.
     */
    REQUEST_RECEIVE_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100, maximum: 600_000 }),
    /** Deepest JSON nesting accepted in request bodies (400 beyond, checked before parsing). */
    JSON_MAX_DEPTH: Type.Integer({ default: DEFAULT_JSON_MAX_DEPTH, minimum: 2, maximum: 1_000 }),
  };
}
export type CommonConfig = ConfigOf<ReturnType<typeof commonEnv>>;

/** Every variable of the service `def` with its own `schema` from `source`; throws one ConfigError naming each problem. */
export function loadServiceConfig<S extends ConfigSchema>(def: ServiceDefinition, schema: S, source: Record<string, string | undefined>) {
  const problems: string[] = [];
  const collect = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
      return undefined;
    }
  };
  const commonSchema = commonEnv(def);
  const common = collect(() => loadConfig(def.name, commonSchema, source));
  const own = collect(() => loadConfig(def.name, schema, source));
  const ds = collect(() => loadDatastoreConfig(def, source));
  collect(() => checkPeerUrls(def.name, source));
  const trustProxy = collect(() => {
    try {
      return { list: parseTrustProxy(common?.TRUST_PROXY, common?.TRUST_PROXY_GLOBAL_IPV6) };
    } catch (e) {
      throw new ConfigError(def.name, [`TRUST_PROXY ${(e as Error).message}`]);
    }
  });
  if (problems.length > 0 || !common || !own || !ds || !trustProxy) throw new ConfigError(def.name, problems);
  return { commonSchema, common, own, ds, trustProxy };
}
