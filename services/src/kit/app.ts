/**
 * The Fastify instance every service runs in: pino logs with redaction, request ids, strict body
 * validation, uniform errors, body limit. No service logic here.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import { installErrorHandlers } from "./errors";

/** The Fastify instance type services get (TypeBox type provider: typed request bodies/params). */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

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

/** TRUST_PROXY: "true"/"false", a hop count ("1" behind Nginx), or comma-separated addresses/CIDRs. */
export function parseTrustProxy(v: string | undefined): boolean | number | string[] | undefined {
  if (v === undefined) return undefined;
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

/** Body: strict types (no coercion), defaults applied; params/query/headers: coerced from strings. */
function installValidators(app: App) {
  const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  const otherAjv = new Ajv({ coerceTypes: "array", useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats(bodyAjv);
  addFormats(otherAjv);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? bodyAjv : otherAjv).compile(schema));
}

export interface AppOptions {
  log: Logger;
  bodyLimit: number;
  trustProxy: string | undefined;
}

export function createApp(o: AppOptions): App {
  const app = Fastify<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger>({
    loggerInstance: o.log,
    bodyLimit: o.bodyLimit,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // One "request completed" line per request (see probes.ts) instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: "requestId", disableRequestLogging: true }),
    // Fastify accepts a hop count at runtime (proxy-addr) though its types omit it.
    trustProxy: parseTrustProxy(o.trustProxy) as boolean | string | string[] | undefined,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();
  installValidators(app);
  installErrorHandlers(app);
  return app;
}
