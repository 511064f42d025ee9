/**
 * The logger of each request (`request.log`): the service logger's child bound to the request id,
 * made only when the request logs something at an enabled level.
 *
 * Fastify asks for one child per request, and a pino child serialises its bindings through the
 * redaction (whose wildcard paths run on every binding): measured under bench/gateway.ts, about 3 %
 * of the gateway's CPU per request, for a logger most requests never use (the one access line per
 * request is written by ./probes.ts from the service logger, with the request id as a field).
 */
import type { FastifyBaseLogger } from "fastify";
import { levels, type Bindings, type ChildLoggerOptions, type LevelWithSilentOrString } from "pino";

type Method = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

/** Whether `logger` writes lines of `method`'s level (a route's logLevel included). */
export function levelEnabled(logger: FastifyBaseLogger, method: Method): boolean {
  const min = levels.values[logger.level];
  return min !== undefined && levels.values[method] >= min; // "silent" has no value
}

export class LazyRequestLogger implements FastifyBaseLogger {
  private real?: FastifyBaseLogger;
  private ownLevel: LevelWithSilentOrString | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {
    this.ownLevel = options.level;
  }

  get level(): LevelWithSilentOrString {
    return this.real?.level ?? this.ownLevel ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    if (this.real) this.real.level = level;
    else this.ownLevel = level;
  }

  /** The pino child itself, made on first use. */
  private logger(): FastifyBaseLogger {
    this.real ??= this.parent.child(this.bindings, this.ownLevel === undefined ? this.options : { ...this.options, level: this.ownLevel });
    return this.real;
  }

  private write(method: Method, args: unknown[]): void {
    if (!levelEnabled(this, method)) return;
    const logger = this.logger();
    Reflect.apply(logger[method], logger, args);
  }

  fatal(...args: unknown[]): void {
    this.write("fatal", args);
  }
  error(...args: unknown[]): void {
    this.write("error", args);
  }
  warn(...args: unknown[]): void {
    this.write("warn", args);
  }
  info(...args: unknown[]): void {
    this.write("info", args);
  }
  debug(...args: unknown[]): void {
    this.write("debug", args);
  }
  trace(...args: unknown[]): void {
    this.write("trace", args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, options);
  }
}
