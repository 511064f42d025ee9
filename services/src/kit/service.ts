/**
 * createService / runService: a service module's routes inside the platform's app (./app.ts), with
 * its configuration validated, its datastores decorated on the app (./decorators.ts), the probes
 * (./probes.ts) and a graceful shutdown.
 */
import { setMaxListeners } from "node:events";
import type { DestinationStream, Logger } from "pino";
import { findService, catalog, type ServiceDefinition } from "../catalog";
import { loadServiceConfig, type CommonConfig } from "./service-config";
import { createApp, createLogger, headerCountLimitFor, headerLimitFor, type App } from "./app";
import { describeConfig, type ConfigOf, type ConfigSchema } from "./config";
import { Datastores } from "./datastores";
import { decorateDatastores } from "./decorators";
import { PEER_CLOSE_GRACE_MS, PeerClient } from "./peers";
import { afterGrace } from "./deadline";
import { createMetrics, installProbes, type ReadinessCheck, type ServiceMetrics } from "./probes";
import { flushTelemetry } from "./telemetry/state";
import { registerOpenApi } from "./openapi";
import { exportScheduledJobRuns, runRecorded, type ScheduledJobHost } from "./scheduled-job-runs";
import { endConnectionsAfterAnswers } from "./closing-answers";

export { clientRequestIdOf, createLogger, requestIdFor, type App } from "./app";
export { commonEnv, type CommonConfig } from "./service-config";
export type { ReadinessCheck, ServiceMetrics } from "./probes";


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
  metrics: ServiceMetrics;
  /** Adds a /ready check beyond the datastores (required ones make /ready 503 when failing). */
  addReadinessCheck(name: string, check: ReadinessCheck, opts?: { required?: boolean }): void;
  /** Runs on shutdown, after in-flight requests drained, before datastores close. */
  onClose(fn: () => Promise<void> | void): void;
  /**
   * Aborted when the service starts closing (close(); after SIGTERM, once SHUTDOWN_DRAIN_MS is over),
   * before the in-flight requests are waited for: a request waiting on something outside the process
   * (another replica's work) ends then with shuttingDown() instead of holding the shutdown past
   * SHUTDOWN_TIMEOUT_MS. A peer call with `cutOnClose` (./peers.ts) is cut PEER_CLOSE_GRACE_MS after it.
   */
  closing: AbortSignal;
  /** Draining (after SIGTERM, SHUTDOWN_DRAIN_MS): still serving, every answer closes its connection (./probes.ts). */
  draining(): boolean;
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

/** A route as registered (method, URL pattern, TypeBox/JSON schemas; without a querystring of its own the kit's empty one, or `takesAnyQuery`: ./query-parameters.ts): docs and generated tests read these. */
export interface RouteInfo {
  method: string;
  url: string;
  schema?: { body?: unknown; querystring?: unknown; params?: unknown; headers?: unknown; response?: Record<string, unknown>; hide?: boolean };
  takesAnyQuery?: true;
}

export interface Service<C = Record<string, unknown>> {
  app: App;
  ctx: ServiceContext<C>;
  /** Every route the service registered, probes included (kit isInternalPath tells them apart). */
  routes: ReadonlyArray<RouteInfo>;
  /** Listens on the configured HOST/PORT unless overridden; resolves to the base URL. */
  listen(opts?: { port?: number; host?: string }): Promise<string>;
  /** Starts draining: /ready answers 503 and every response closes its connection (still serving). */
  drain(): void;
  close(): Promise<void>;
}

/** Builds a service (not listening yet). Throws ConfigError naming any invalid variable. */
export async function createService<S extends ConfigSchema>(
  mod: ServiceModule<S>,
  opts: CreateServiceOptions = {},
): Promise<Service<ConfigOf<S>>> {
  const source = opts.env ?? process.env;
  const def = findService(mod.name);
  if (!def) throw new Error(`Service "${mod.name}" is not in the catalog (${catalog.map((s) => s.name).join(", ")})`);

  const { commonSchema, common, own, ds, trustProxy } = loadServiceConfig(def, mod.config ?? ({} as S), source);

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

  const app = createApp({ log, bodyLimit: config.BODY_LIMIT_BYTES, trustProxy: trustProxy.list, jsonMaxDepth: config.JSON_MAX_DEPTH, receiveTimeoutMs: config.REQUEST_RECEIVE_TIMEOUT_MS, maxHeaderBytes: headerLimitFor(def.entryPoint), maxHeaders: headerCountLimitFor(def.entryPoint), ownRequestIds: def.entryPoint });
  const routes: RouteInfo[] = [];
  app.addHook("onRoute", (r) => {
    const anyQuery = r.config?.takesAnyQuery ? { takesAnyQuery: true as const } : {};
    for (const method of [r.method].flat()) if (method !== "HEAD") routes.push({ method, url: r.url, schema: r.schema as RouteInfo["schema"], ...anyQuery });
  });
  const metrics = createMetrics(def.name, opts.defaultMetrics ?? true);
  const datastores = new Datastores(def, ds.configs, ds.states, log, metrics.registry);
  decorateDatastores(app, datastores);
  const extraChecks: Array<{ name: string; check: ReadinessCheck; required: boolean }> = [];
  const closers: Array<() => Promise<void> | void> = [];
  const closing = new AbortController();
  // A request waiting on something outside the process may listen on `closing` while it waits
  // (ai-orchestrator's leasesGone: a pause on it per disable or delete in flight), each removing its
  // listener when its wait ends: ten disables at once are normal, not a leak, so Node's warning past
  // 10 listeners (MaxListenersExceededWarning) is turned off for it, as for afterGrace's (./deadline.ts).
  setMaxListeners(0, closing.signal);
  let draining = false;
  // Fastify runs preClose before it waits for the requests in flight (onClose runs after them).
  app.addHook("preClose", async () => closing.abort());

  const ctx: ServiceContext<ConfigOf<S>> = {
    name: def.name,
    definition: def,
    config,
    env: source,
    log,
    app,
    datastores,
    // A peer call marked cutOnClose ends PEER_CLOSE_GRACE_MS into the close (./peers.ts says why).
    peers: new PeerClient(def, source, afterGrace(closing.signal, PEER_CLOSE_GRACE_MS)),
    metrics,
    addReadinessCheck: (name, check, o) => extraChecks.push({ name, check, required: o?.required ?? true }),
    onClose: (fn) => closers.push(fn),
    closing: closing.signal,
    draining: () => draining,
  };

  // Before any route: @fastify/swagger documents the routes registered after it (openapi.ts).
  await registerOpenApi(app, def);
  installProbes(app, { service: def.name, log, metrics, datastores, extraChecks, readyTimeoutMs: config.READY_TIMEOUT_MS, draining: () => draining, logClientRequestIds: def.entryPoint });
  exportScheduledJobRuns(scheduledJobHost(ctx), metrics.registry);

  app.addHook("onClose", async () => {
    for (const fn of closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err }, "close hook failed");
      }
    }
    await datastores.closeAll();
    await flushTelemetry(); // the last spans of this process (no-op when tracing is off)
  });

  await mod.register(ctx);
  await app.ready();

  return {
    app,
    ctx,
    routes,
    async listen(o = {}) {
      const address = await app.listen({ port: o.port ?? config.PORT, host: o.host ?? config.HOST });
      return address.replace("[::1]", "127.0.0.1");
    },
    drain: () => {
      draining = true;
      endConnectionsAfterAnswers(app);
    },
    close: () => app.close(),
  };
}

/**
 * Starts a service: listens, and on SIGTERM/SIGINT stops accepting, drains in-flight requests,
 * closes pools, bounded by SHUTDOWN_TIMEOUT_MS (then exits 1). The signal handlers are installed
 * before anything else: a signal during start-up (or right after "listening") is remembered and
 * leads to the same graceful shutdown once the service exists, never to the default kill.
 */
export async function runService<S extends ConfigSchema>(mod: ServiceModule<S>, opts: CreateServiceOptions = {}) {
  let service: Service<ConfigOf<S>> | undefined;
  let requested: string | undefined;
  let started = false;
  let closing = false;
  const shutdown = (signal: string) => {
    requested ??= signal;
    if (!service || !started || closing) return; // during start-up: handled once it is listening
    closing = true;
    const { log, config } = service.ctx;
    log.info({ signal: requested }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ timeoutMs: config.SHUTDOWN_DRAIN_MS + config.SHUTDOWN_TIMEOUT_MS }, "graceful shutdown timed out, exiting");
      process.exit(1);
    }, config.SHUTDOWN_DRAIN_MS + config.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    // Serve on for SHUTDOWN_DRAIN_MS (readiness failed, connections closed after each answer), then close.
    service.drain();
    new Promise((r) => setTimeout(r, config.SHUTDOWN_DRAIN_MS)).then(() => service!.close()).then(
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
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  service = await createService(mod, opts);
  const { log } = service.ctx;
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  const address = await service.listen();
  started = true;
  log.info({ address }, `${mod.name} listening`);
  if (requested) shutdown(requested);
  return service;
}

function scheduledJobHost(ctx: ServiceContext<unknown>): ScheduledJobHost {
  return { definition: ctx.definition, log: ctx.log, postgres: () => (ctx.datastores.isEnabled("postgres") ? ctx.datastores.get("postgres") : undefined) };
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
    // The service's scheduled job records its run (scheduled_job_runs) on every runtime.
    return await runRecorded(scheduledJobHost(service.ctx), [command, ...args], async () => {
      const code = await fn(service.ctx, args);
      return typeof code === "number" ? code : 0;
    });
  } finally {
    await service.close();
  }
}
