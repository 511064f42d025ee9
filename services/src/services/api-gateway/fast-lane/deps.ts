/** What the fast lane (./serve.ts) works with: the gateway's own parts, shared with its Fastify path. */
import type { IncomingMessage, Server } from "node:http";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { Authenticator } from "../authenticate";
import type { CounterTally } from "../counter-tally";
import type { GatewayLimits } from "../limits";
import type { TargetCache, UpstreamTarget } from "../proxy";
import type { UpstreamShares } from "../upstream-shares";
import type { UsageEmitter } from "../usage";
import type { FastifyRouteCheck } from "./fastify-route";
import type { UpstreamPool } from "./upstream-pool";

export interface LaneDeps {
  server: Server;
  targets: TargetCache;
  /** Whether Fastify would route a URL to the proxy route, past the kit's preValidation (./fastify-route.ts). */
  fastifyRoute: FastifyRouteCheck;
  /** The proxy route's routing decision of a URL, kept in `targets` (its 400/404 thrown). */
  targetOf: (rawUrl: string) => UpstreamTarget;
  /** Routed services by route segment (usage events name the route). */
  routes: ReadonlyMap<string, unknown>;
  /** Each routed service's base URL. */
  bases: ReadonlyMap<string, URL>;
  authenticator: Authenticator;
  limits: GatewayLimits;
  /** RATE_LIMIT_MAX_REQUESTS (the per-user / per-address limit @fastify/rate-limit applies). */
  rateMax: number;
  clientAddress: (req: IncomingMessage) => string;
  maxHeaders: number;
  security: Readonly<Record<string, string>>;
  pool: UpstreamPool;
  /** Each client's share of the connections to a service (../upstream-shares.ts): the Fastify path's instance, one count for both. */
  shares: UpstreamShares;
  /** CLIENT_SEND_TIMEOUT_MS: how long a streamed answer waits for a client that takes none of it (./exchange.ts). */
  sendTimeoutMs: number;
  proxyTimeoutMs: number;
  requestTimeoutMs: number;
  log: Logger;
  /** The kit's access-line logger (probes.ts accessLogOf). */
  accessLog: Logger;
  pathOf: (url: string) => string;
  /** The request's duration into the kit's httpDuration (route "/api/*"), as its onResponse hook observes it. */
  observeDuration: (method: string, status: number, seconds: number) => void;
  upstreamTotal: Counter<"upstream" | "status_code">;
  /** upstreamTotal's increments kept in process until it is read (../counter-tally.ts): an answer's. */
  upstreamAnswers: CounterTally<"upstream" | "status_code">;
  usage: UsageEmitter | undefined;
  draining: () => boolean;
  closing: () => boolean;
}
