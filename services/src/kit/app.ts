/**
 * The Fastify instance every service runs in: pino logs with redaction, request ids, strict body
 * validation, uniform errors, body limit. No service logic here.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest, type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { OptionalKind } from "@sinclair/typebox";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import { answerClientError, installConnectRefusal, installEarlyAnswerTracking } from "./client-errors";
import { setRawAnswerRequestIds } from "./raw-answers";
import { installClosingAnswers } from "./closing-answers";
import { errorBody, installErrorHandlers } from "./errors";
import { ANY_CASE_UUID_RE } from "./identity";
import { installJsonGuards } from "./request-guards";
import { ABSOLUTE_TARGET_MESSAGE, absoluteTargetIssue, headerCountLimitFor, installFramingGuards } from "./request-framing";
import { platformDateTime } from "./instants";
import { mailboxFormat } from "./mailbox";
import { LazyRequestLogger } from "./request-logger";
import { traceRoutes } from "./telemetry/fastify";
import { scrubString } from "./telemetry/scrub";
import { stdoutLogDestination } from "./log-destination";
import { isCredentialField } from "./credential-words";
import { CENSOR, censorChildBindings, redactFields, redactLogFields } from "./log-redaction";
import { numeralIssue } from "./numerals";
import { declaredParameters, settleQuerystring, unknownParameterIssue } from "./query-parameters";
import { settleBody } from "./unread-bodies";
import { closeRouteRecords } from "./record-keys";

export { parseTrustProxy } from "./request-guards";
export { headerCountLimitFor } from "./request-framing";

/** The Fastify instance type services get (TypeBox type provider: typed request bodies/params). */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/**
 * The `err` of a log line, with credential-shaped text masked in every string it holds (./telemetry/scrub.ts,
 * the spans' rules): a far end's error message may echo what the service sent it (the card
 * processor's 401 "Invalid API Key provided: sk_live_..."), and a library's error carries the far
 * end's whole answer besides (Stripe's `raw`), or the request it made (an HTTP client's
 * `config.headers.authorization`): a field named like a credential is censored whatever it holds,
 * as in the rest of the line (./log-redaction.ts). Runs only on lines that log an error.
 */
export function scrubbedError(err: unknown): unknown {
  return scrubValues(pino.stdSerializers.err(err as Error), 0, new WeakSet());
}

function scrubValues(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return scrubString(value);
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value) || depth > 6) return "[Object]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => scrubValues(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isCredentialField(k) && v !== undefined && v !== null ? CENSOR : scrubValues(v, depth + 1, seen);
  return out;
}

export function createLogger(name: string, level: string, stream?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name,
    level,
    base: { service: name },
    // Fields named like a credential censored at any depth (./log-redaction.ts), in each line's fields
    // and in the base bindings; a child's own bindings by censorChildBindings below (pino resets this
    // bindings formatter in every child).
    formatters: { log: redactLogFields, bindings: redactFields },
    serializers: { err: scrubbedError },
    timestamp: isoTimeOncePerMs,
  };
  // Without a stream: stdout, each event-loop turn's lines written together (./log-destination.ts).
  const to = stream ?? stdoutLogDestination();
  return censorChildBindings(to ? pino(options, to) : pino(options));
}

let isoTimeMs = Number.NaN;
let isoTimeField = "";
/**
 * pino.stdTimeFunctions.isoTime's field (`,"time":"<ISO 8601>"`), its text made once per millisecond
 * rather than once per line: new Date().toISOString() for each line was about 1 % of the gateway's busy
 * time under its bench (session 57's profile), where several lines share a millisecond.
 */
export function isoTimeOncePerMs(): string {
  const now = Date.now();
  if (now !== isoTimeMs) {
    isoTimeMs = now;
    isoTimeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoTimeField;
}

const requestIdRe = /^[A-Za-z0-9._:-]{1,128}$/;

/** A UUID in its canonical text form (any case, as PostgreSQL prints and reads it): identity.ts's pattern. */
export const CANONICAL_UUID = ANY_CASE_UUID_RE;

/** Incoming x-request-id when well-formed, else a new UUID (a service behind the entry point: the id is the gateway's). */
export function requestIdFor(req: IncomingMessage): string {
  return clientRequestIdOf(req) ?? randomUUID();
}

/**
 * The x-request-id a request arrived with, when well-formed (`[A-Za-z0-9._:-]{1,128}`). The entry
 * point never takes it as its request id (a client could then give its request another request's id
 * in every log line and in chain-debug): it keeps it as `clientRequestId` (logged, forwarded as
 * `x-client-request-id`) for the client's own correlation.
 */
export function clientRequestIdOf(req: IncomingMessage): string | undefined {
  const h = req.headers["x-request-id"];
  return typeof h === "string" && requestIdRe.test(h) ? h : undefined;
}

const ownRequestId = () => randomUUID();

/** Where a request id given outside Fastify waits for the socket's next request (carryRequestId). */
const CARRIED_REQUEST_ID = Symbol("carriedRequestId");
interface CarriedRequestId {
  method: string;
  url: string;
  id: string;
}
type CarryingSocket = Socket & { [CARRIED_REQUEST_ID]?: CarriedRequestId };

/**
 * The id `method` `url` was given before node:http and Fastify read it from `socket`: the gateway's
 * fast lane reads a request first, gives it its id (warm-ups and log lines carry it) and may hand
 * the connection over with that request's bytes in front; Fastify's genReqId (createApp) then takes
 * this id for it instead of a new one, so one request has one id in every line. Set by in-process
 * code on the socket object only: never from a header, so the entry point still never takes a
 * client's x-request-id as its request id (clientRequestIdOf).
 */
export function carryRequestId(socket: Socket, method: string, url: string, id: string): void {
  (socket as CarryingSocket)[CARRIED_REQUEST_ID] = { method, url, id };
}

/** The carried id when `req` is the request it was given to (taken: only the socket's next request may have it). */
function carriedRequestIdOf(req: IncomingMessage): string | undefined {
  const socket = req.socket as CarryingSocket | null;
  const carried = socket?.[CARRIED_REQUEST_ID];
  if (carried === undefined) return undefined;
  socket![CARRIED_REQUEST_ID] = undefined;
  return carried.method === req.method && carried.url === req.url ? carried.id : undefined;
}

/** createApp's genReqId: an id carried over to the request (carryRequestId), else the service's own rule. */
const requestIdsOf = (own: (req: IncomingMessage) => string) => (req: IncomingMessage): string => carriedRequestIdOf(req) ?? own(req);

/** Body: strict types (no coercion), defaults applied; params/query/headers: coerced from strings; a query parameter the route does not take refused (on every route). */
function installValidators(app: App) {
  const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  const otherAjv = new Ajv({ coerceTypes: "array", useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  for (const ajv of [bodyAjv, otherAjv]) {
    addFormats(ajv);
    // Every date-time within the range the datastores hold (./instants.ts).
    ajv.addFormat("date-time", platformDateTime);
    // The canonical text form only: ajv-formats also takes the `urn:uuid:` URN, which PostgreSQL's
    // uuid type refuses (a 500 on GET /orders/urn:uuid:<id>).
    ajv.addFormat("uuid", CANONICAL_UUID);
    ajv.addFormat("email", mailboxFormat);
  }
  // A body declared Type.Optional may be left out (the handler reads `req.body ?? {}`); ajv alone
  // refuses a missing one ("must be object", naming no field). TypeBox marks it with a symbol, which
  // the copy Fastify compiles does not keep: marked at registration with an OpenAPI extension keyword.
  app.addHook("onRoute", (route) => {
    // A route without a querystring schema takes no parameter, unless it says it takes any (./query-parameters.ts).
    settleQuerystring(route);
    // A route without a body schema takes no body, unless it says it reads any (./unread-bodies.ts).
    settleBody(route);
    // A record's keys no pattern matches are refused, not let through unchecked (./record-keys.ts).
    closeRouteRecords(route);
    const body = route.schema?.body as Record<string | symbol, unknown> | undefined;
    if (body && body[OptionalKind] === "Optional") route.schema!.body = { ...body, [OPTIONAL_BODY]: true };
  });
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate = (httpPart === "body" ? bodyAjv : otherAjv).compile(schema);
    if (httpPart !== "body") {
      // A query parameter the route does not declare is refused, not ignored (./query-parameters.ts).
      const declared = httpPart === "querystring" ? declaredParameters(schema) : undefined;
      // Query, path parameters and headers are text ajv coerces: numbers only as decimal numerals (./numerals.ts).
      const decimalNumbers = (data: unknown): boolean => {
        const issue = (declared && unknownParameterIssue(declared, data)) || numeralIssue(schema, data);
        if (issue) {
          decimalNumbers.errors = [issue] as typeof validate.errors;
          return false;
        }
        const ok = validate(data) as boolean;
        decimalNumbers.errors = validate.errors;
        return ok;
      };
      decimalNumbers.errors = null as typeof validate.errors;
      return decimalNumbers;
    }
    if ((schema as Record<string, unknown>)[OPTIONAL_BODY] !== true) return validate;
    const optionalBody = (data: unknown): boolean => {
      // Fastify hands over null for a request without a body (and JSON `null` reads the same).
      if (data === undefined || data === null) return true;
      const ok = validate(data) as boolean;
      optionalBody.errors = validate.errors;
      return ok;
    };
    optionalBody.errors = null as typeof validate.errors;
    return optionalBody;
  });
}

/** The schema keyword marking a body that may be left out (an OpenAPI `x-` extension, ignored by ajv). */
const OPTIONAL_BODY = "x-optional-body";

export interface AppOptions {
  log: Logger;
  bodyLimit: number;
  /** Addresses / CIDRs allowed to set X-Forwarded-For (already validated by parseTrustProxy). */
  trustProxy: string[] | undefined;
  /** Deepest JSON body nesting accepted (400 beyond). */
  jsonMaxDepth: number;
  /** Time allowed to receive a whole request, headers included (408 and the connection closed beyond). */
  receiveTimeoutMs: number;
  /** Largest request line and header block accepted (431 beyond): headerLimitFor; Node's 16 KiB when not given. */
  maxHeaderBytes?: number;
  /** Most headers a request may carry (431 beyond; ./request-framing.ts headerCountLimitFor): a service's 200 when not given. */
  maxHeaders?: number;
  /** The entry point: every request gets an id of its own, whatever x-request-id the client sent (clientRequestIdOf). */
  ownRequestIds?: boolean;
}

/**
 * The entry point takes Node's default header block (16 KiB); the services behind it twice that,
 * room for what it adds to a request it forwards (identity, X-Forwarded-For, the request id, trace
 * context). With one limit everywhere, a request just under it passed the entry point and was then
 * refused by the service it was forwarded to.
 */
export const headerLimitFor = (entryPoint: boolean): number => (entryPoint ? 16 * 1024 : 32 * 1024);

function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const tooLong = error.code === "FST_ERR_MAX_PARAM_LENGTH";
  const bad = error.code === "FST_ERR_BAD_URL";
  if (!tooLong && !bad) request.log.error({ err: error }, "framework error");
  const status = tooLong ? 414 : bad ? 400 : 500;
  const body = tooLong
    ? errorBody(request, "URI_TOO_LONG", "URL path parameter too long", "url")
    : bad
      ? errorBody(request, "BAD_REQUEST", absoluteTargetIssue(request.raw.url) ? ABSOLUTE_TARGET_MESSAGE : "Malformed URL (bad percent-encoding)", "url")
      : errorBody(request, "INTERNAL_ERROR", "Internal Server Error");
  reply.status(status).send(body);
}

export function createApp(o: AppOptions): App {
  const genReqId = requestIdsOf(o.ownRequestIds ? ownRequestId : requestIdFor);
  const app = Fastify<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger>({
    loggerInstance: o.log,
    bodyLimit: o.bodyLimit,
    genReqId,
    requestIdHeader: false,
    // request.log is made on first use (./request-logger.ts), not for every request.
    childLoggerFactory: (logger, bindings, options) => new LazyRequestLogger(logger, bindings, options),
    // One "request completed" line per request (see probes.ts) instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: "requestId", disableRequestLogging: true }),
    trustProxy: o.trustProxy,
    // Closing: the kit's 503 SHUTTING_DOWN in the platform's shape (./closing-answers.ts), not Fastify's raw one.
    return503OnClosing: false,
    // Node's own clock on receiving a request: headers and body within receiveTimeoutMs, checked
    // every second (its default check, every 30 s, let a slow client stay up to 30 s longer).
    // Both places are needed: Fastify sets the server's requestTimeout after creating it (0, no
    // limit, unless given), and Node refuses at creation a headersTimeout above the requestTimeout
    // it is given there (its default, 300 s, is below this setting's maximum). A missing Host is
    // refused by ./request-framing.ts, in the platform's shape (Node's own 400 has no body).
    requestTimeout: o.receiveTimeoutMs,
    http: { headersTimeout: o.receiveTimeoutMs, requestTimeout: o.receiveTimeoutMs, connectionsCheckingInterval: Math.min(1_000, o.receiveTimeoutMs), maxHeaderSize: o.maxHeaderBytes, requireHostHeader: false },
    // Requests the router cannot even parse (malformed percent-encoding in the path, a parameter
    // over the length limit) get the platform's error shape too, without echoing the URL.
    frameworkErrors: answerFrameworkError,
    // What Node answers before routing (unparsable requests, oversized headers, the receive timeout), in the platform's shape.
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // First of every onRequest hook: once closing, nothing else runs for a request.
  installClosingAnswers(app);
  setRawAnswerRequestIds(app.server, genReqId);
  installEarlyAnswerTracking(app);
  installConnectRefusal(app.server);
  installValidators(app);
  installErrorHandlers(app);
  installJsonGuards(app, o.jsonMaxDepth);
  installFramingGuards(app, { maxHeaders: o.maxHeaders ?? headerCountLimitFor(false), bodyLimit: o.bodyLimit });
  traceRoutes(app);
  return app;
}
