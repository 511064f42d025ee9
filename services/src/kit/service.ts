/**
 * createService / runService: a Fastify app with the platform's conventions (request ids, pino
 * logs with redaction, /health, /ready, /metrics, uniform errors, body limit, strict body
 * validation, graceful shutdown) around a service module's routes.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { findService, catalog, type Datastore, type ServiceDefinition } from "../catalog";
import { ConfigError, describeConfig, env, loadConfig, type ConfigOf, type ConfigSchema } from "./config";
import { Datastores, loadDatastoreConfig } from "./datastores";
import { installErrorHandlers } from "./errors";
import { PeerClient } from "./peers";

/** The Fastify instance type services get (TypeBox type provider: typed request bodies/params). */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Variables every service reads (in addition to its datastores' and its own). */
export function commonEnv(def: ServiceDefinition) {
  return {
    PORT: env.int({ default: def.port, min: 0, max: 65535 }),
    HOST: env.string({ default: "0.0.0.0" }),
    LOG_LEVEL: env.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, { default: "info" }),
    /** Largest accepted request body; larger ones get 413. */
    BODY_LIMIT_BYTES: env.int({ default: 1_048_576, min: 1_024, max: 100 * 1_048_576 }),
    /** Bound on graceful shutdown (drain in-flight requests, close pools). */
    SHUTDOWN_TIMEOUT_MS: env.int({ default: 10_000, min: 100 }),
    /** Timeout of each dependency check of /ready. */
    READY_TIMEOUT_MS: env.int({ default: 2_000, min: 50, max: 60_000 }),
    /** Fastify trustProxy: "true", a hop count ("1" behind Nginx), or comma-separated addresses/CIDRs. Unset: none. */
    TRUST_PROXY: env.string({ optional: true }),
  };
}
export type CommonConfig = ConfigOf<ReturnType<typeof commonEnv>>;

export type ReadinessCheck = () => Promise<void>;

export interface ServiceContext<C = Record<string, unknown>> {
  name: string;
  definition: ServiceDefinition;
  /** Common + service-specific configuration (validated). */
  config: CommonConfig & C;
  /** The environment the service was created from (process.env unless a test passes one). */
  env: NodeJS.ProcessEnv;
  log: Logger;
  app: App;
  /** Lazily created datastore clients (only the catalog-listed ones). */
  datastores: Datastores;
  peers: PeerClient;
  metrics: { registry: Registry; httpDuration: Histogram<string>; dependencyUp: Gauge<string> };
  /** Adds a /ready check beyond the datastores (required ones make /ready 503 when failing). */
  addReadinessCheck(name: string, check: ReadinessCheck, opts?: { required?: boolean }): void;
  /** Runs on shutdown, after in-flight requests drained, before datastores close. */
  onClose(fn: () => Promise<void> | void): void;
}

export interface ServiceModule<S extends ConfigSchema = ConfigSchema> {
  /** Catalog name. */
  name: string;
  /** Service-specific environment variables. */
  config?: S;
  /** Registers routes, hooks and readiness checks. */
  register(ctx: ServiceContext<ConfigOf<S>>): Promise<void> | void;
  /** One-shot commands (`node dist/main.js <service> <command>`); return the exit code. */
  commands?: Record<string, (ctx: ServiceContext<ConfigOf<S>>, args: string[]) => Promise<number | void>>;
}

/** Identity function that infers the config type of a service module. */
export function defineService<S extends ConfigSchema>(m: ServiceModule<S>): ServiceModule<S> {
  return m;
}

export interface CreateServiceOptions {
  /** Environment to read (default process.env). Tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** A pino destination (tests: a stream to inspect logs) or a ready logger. */
  logStream?: DestinationStream;
  logger?: Logger;
  /** Collect default process metrics (default true). */
  defaultMetrics?: boolean;
}

export interface Service<C = Record<string, unknown>> {
  app: App;
  ctx: ServiceContext<C>;
  /** Listens on the configured HOST/PORT unless overridden; resolves to the base URL. */
  listen(opts?: { port?: number; host?: string }): Promise<string>;
  close(): Promise<void>;
}

/** Paths, headers and body fields pino masks. */
export const redactPaths = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  "headers.authorization",
  "headers.cookie",
  'headers["x-api-key"]',
  "*.password",
  "*.newPassword",
  "*.token",
  "*.accessToken",
  "*.refreshToken",
  "*.apiKey",
  "*.secret",
  "password",
  "token",
  "accessToken",
  "refreshToken",
  "apiKey",
  "secret",
];

export function createLogger(name: string, level: string, stream?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name,
    level,
    base: { service: name },
    redact: { paths: redactPaths, censor: "[REDACTED]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return stream ? pino(options, stream) : pino(options);
}

const requestIdRe = /^[A-Za-z0-9._:-]{1,128}$/;

/** Incoming x-request-id when well-formed, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const h = req.headers["x-request-id"];
  return typeof h === "string" && requestIdRe.test(h) ? h : randomUUID();
}

function parseTrustProxy(v: string | undefined): boolean | number | string[] | undefined {
  if (v === undefined) return undefined;
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Body: strict types (no coercion), defaults applied; params/query/headers: coerced from strings. */
function installValidators(app: App) {
  const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  const otherAjv = new Ajv({ coerceTypes: "array", useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats(bodyAjv);
  addFormats(otherAjv);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? bodyAjv : otherAjv).compile(schema));
}

/** Builds a service (not listening yet). Throws ConfigError naming any invalid variable. */
export async function createService<S extends ConfigSchema>(
  mod: ServiceModule<S>,
  opts: CreateServiceOptions = {},
): Promise<Service<ConfigOf<S>>> {
  const source = opts.env ?? process.env;
  const def = findService(mod.name);
  if (!def) throw new Error(`Service "${mod.name}" is not in the catalog (${catalog.map((s) => s.name).join(", ")})`);

  // Validate everything up front and report every problem at once.
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
  const own = collect(() => loadConfig(def.name, mod.config ?? ({} as S), source));
  const ds = collect(() => loadDatastoreConfig(def, source));
  if (problems.length > 0 || !common || !own || !ds) throw new ConfigError(def.name, problems);

  const config = { ...common, ...own } as CommonConfig & ConfigOf<S>;
  const log = opts.logger ?? createLogger(def.name, config.LOG_LEVEL, opts.logStream);
  log.info(
    {
      config: describeConfig(config as Record<string, unknown>, { ...commonSchema, ...(mod.config ?? {}) }),
      datastores: Object.fromEntries(Object.entries(ds.states).map(([k, v]) => [k, v!.status])),
    },
    "configuration loaded",
  );
  for (const [name, state] of Object.entries(ds.states)) {
    if (state!.status === "disabled") log.warn({ datastore: name }, `${name} is disabled (optional, not configured): degraded mode`);
  }

  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // One "request completed" line per request (onResponse hook below) instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: "requestId", disableRequestLogging: true }),
    // Fastify accepts a hop count at runtime (proxy-addr) though its types omit it.
    trustProxy: parseTrustProxy(config.TRUST_PROXY) as boolean | string | string[] | undefined,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidators(app);
  installErrorHandlers(app);

  // Metrics: one registry per app.
  const registry = new Registry();
  registry.setDefaultLabels({ service: def.name });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by method, route and status",
    labelNames: ["method", "route", "status_code"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const dependencyUp = new Gauge({
    name: "service_dependency_up",
    help: "1 when the dependency answered its last readiness check, 0 when it failed",
    labelNames: ["dependency"],
    registers: [registry],
  });

  const datastores = new Datastores(def, ds.configs, ds.states, log);
  const extraChecks: Array<{ name: string; check: ReadinessCheck; required: boolean }> = [];
  const closers: Array<() => Promise<void> | void> = [];

  const ctx: ServiceContext<ConfigOf<S>> = {
    name: def.name,
    definition: def,
    config,
    env: source,
    log,
    app,
    datastores,
    peers: new PeerClient(def, source),
    metrics: { registry, httpDuration, dependencyUp },
    addReadinessCheck: (name, check, o) => extraChecks.push({ name, check, required: o?.required ?? true }),
    onClose: (fn) => closers.push(fn),
  };

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    const level = reply.statusCode >= 500 ? "error" : "info";
    request.log[level](
      { method: request.method, url: request.url.split("?")[0], statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      "request completed",
    );
  });

  app.get("/health", { logLevel: "warn" }, async () => ({ status: "ok", service: def.name }));

  app.get("/ready", { logLevel: "warn" }, async (_request, reply) => {
    type Result = { status: "ok" | "failed" | "disabled"; required: boolean; latencyMs?: number; error?: string };
    const checks: Array<{ name: string; required: boolean; run?: ReadinessCheck }> = [
      ...datastores.list().map(({ name, state }) => ({
        name: name as string,
        required: state.status === "enabled" && state.required,
        run: state.status === "enabled" ? () => datastores.get(name as Datastore).ping() : undefined,
      })),
      ...extraChecks.map((c) => ({ name: c.name, required: c.required, run: c.check })),
    ];
    const results: Record<string, Result> = {};
    await Promise.all(
      checks.map(async (c) => {
        if (!c.run) {
          results[c.name] = { status: "disabled", required: false };
          return;
        }
        const t0 = performance.now();
        try {
          await withTimeout(c.run(), config.READY_TIMEOUT_MS);
          results[c.name] = { status: "ok", required: c.required, latencyMs: Math.round((performance.now() - t0) * 10) / 10 };
          dependencyUp.set({ dependency: c.name }, 1);
        } catch (e) {
          results[c.name] = { status: "failed", required: c.required, error: (e as Error).message || String(e) };
          dependencyUp.set({ dependency: c.name }, 0);
        }
      }),
    );
    const ready = Object.values(results).every((r) => r.status !== "failed" || !r.required);
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready", service: def.name, dependencies: results });
  });

  app.get("/metrics", { logLevel: "warn" }, async (_request, reply) => {
    reply.header("content-type", registry.contentType);
    return registry.metrics();
  });

  app.addHook("onClose", async () => {
    for (const fn of closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err }, "close hook failed");
      }
    }
    await datastores.closeAll();
  });

  await mod.register(ctx);
  await app.ready();

  return {
    app,
    ctx,
    async listen(o = {}) {
      const address = await app.listen({ port: o.port ?? config.PORT, host: o.host ?? config.HOST });
      return address.replace("[::1]", "127.0.0.1");
    },
    close: () => app.close(),
  };
}

/**
 * Starts a service: listens, and on SIGTERM/SIGINT stops accepting, drains in-flight requests,
 * closes pools, bounded by SHUTDOWN_TIMEOUT_MS (then exits 1).
 */
export async function runService<S extends ConfigSchema>(mod: ServiceModule<S>, opts: CreateServiceOptions = {}) {
  const service = await createService(mod, opts);
  const { log, config } = service.ctx;
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, "graceful shutdown timed out, exiting");
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    service.close().then(
      () => {
        log.info("shut down cleanly");
        process.exit(0);
      },
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  const address = await service.listen();
  log.info({ address }, `${mod.name} listening`);
  return service;
}

/** Runs a one-shot command of a service module with the full context (no listening). */
export async function runCommand<S extends ConfigSchema>(mod: ServiceModule<S>, command: string, args: string[], opts: CreateServiceOptions = {}): Promise<number> {
  const fn = mod.commands?.[command];
  if (!fn) {
    const known = Object.keys(mod.commands ?? {});
    throw new Error(`${mod.name} has no command "${command}"${known.length ? ` (commands: ${known.join(", ")})` : " (it has no commands)"}`);
  }
  const service = await createService(mod, opts);
  try {
    const code = await fn(service.ctx, args);
    return typeof code === "number" ? code : 0;
  } finally {
    await service.close();
  }
}
