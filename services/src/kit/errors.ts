import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { recordError } from "./telemetry/context";
import { markDrainAnswer } from "./drain-answers";
import { pathOf } from "./request-path";
import { isTransientError } from "./transient-errors";
import { LockWaitError } from "./datastores/postgres-contention";
import { INSTANT_RANGE } from "./instants";
import { displayTextRefusal } from "./display-text";
import { isNamelessParameterIssue, NAMELESS_PARAMETER_FIELD, shownName } from "./query-parameters";
import { reportedIssue, type ValidationIssue } from "./union-issues";

/** Body of every 4xx/5xx response. */
export interface ErrorBody {
  error: { code: string; message: string; field?: string; requestId: string };
}

/** Throw from a handler to answer with a given status and uniform error body. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const badRequest = (message: string, field?: string) => new HttpError(400, "BAD_REQUEST", message, field);
export const unauthorized = (message = "Authentication required") => new HttpError(401, "UNAUTHORIZED", message);
export const forbidden = (message = "Forbidden") => new HttpError(403, "FORBIDDEN", message);
export const notFound = (message = "Not found") => new HttpError(404, "NOT_FOUND", message);
export const conflict = (message: string, field?: string) => new HttpError(409, "CONFLICT", message, field);
/** 503 with a Retry-After: the request was not done (or not finished) and may be sent again in that many seconds. */
export const unavailable = (code: string, message: string, retryAfterSeconds: number) =>
  new HttpError(503, code, message, undefined, { "retry-after": String(retryAfterSeconds) });

/**
 * The platform's answer to a request cut short because its service instance is shutting down (the
 * kit's `ctx.closing`, ./service.ts): 503 SHUTTING_DOWN with Retry-After 1, another replica (or this
 * one started again) answers the request sent again. `outcome` says what became of it.
 */
export const shuttingDown = (outcome: string) => unavailable("SHUTTING_DOWN", `This service instance is shutting down: ${outcome}; retry`, 1);

/** Whether `e` is shuttingDown's answer: a wait, or a peer call (./peers.ts `cutOnClose`), the shutdown cut. */
export const isShuttingDown = (e: unknown): boolean => e instanceof HttpError && e.statusCode === 503 && e.code === "SHUTTING_DOWN";

const DATASTORE_UNAVAILABLE_MESSAGE = "A datastore is unavailable; retry shortly";
/**
 * The platform's answer to a datastore outage, whatever the datastore: 503 DATASTORE_UNAVAILABLE
 * with Retry-After, naming none (its name and the driver's message stay in the log). The error
 * handler answers it for the drivers' transient errors; services throw it where they catch one.
 * `outcome` may tell the client what became of its request ("nothing was changed").
 */
export const datastoreUnavailable = (outcome?: string) =>
  unavailable("DATASTORE_UNAVAILABLE", outcome ? `A datastore is unavailable (${outcome}); retry shortly` : DATASTORE_UNAVAILABLE_MESSAGE, 1);

/**
 * The answer to a LockWaitError `crowded` (./datastores/postgres-contention.ts): too many requests
 * already wait for the same lock (a user's, or one resource's), the senders' burst refused before it
 * queued, nothing run. Not an outage of the platform: 429 TOO_MANY_WAITING with Retry-After 1, in the
 * client's words (no lock, key or setting named).
 */
export const tooManyWaiting = () =>
  new HttpError(429, "TOO_MANY_WAITING", "Too many requests for the same thing are already waiting; retry shortly", undefined, { "retry-after": "1" });

export function errorBody(request: FastifyRequest, code: string, message: string, field?: string): ErrorBody {
  const error: ErrorBody["error"] = { code, message, requestId: String(request.id) };
  if (field) error.field = field;
  return { error };
}

const statusCodes: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  408: "REQUEST_TIMEOUT",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  422: "UNPROCESSABLE_ENTITY",
  423: "LOCKED",
  429: "TOO_MANY_REQUESTS",
  502: "BAD_GATEWAY",
  503: "SERVICE_UNAVAILABLE",
  504: "GATEWAY_TIMEOUT",
};

/** "body" + "/user/email" -> "user.email"; required errors name the missing property. */
function fieldOf(issue: ValidationIssue): string | undefined {
  const path = (issue.instancePath ?? "").split("/").filter(Boolean);
  if (issue.keyword === "required" && typeof issue.params?.missingProperty === "string")
    path.push(issue.params.missingProperty);
  if (issue.keyword === "additionalProperties" && typeof issue.params?.additionalProperty === "string")
    path.push(issue.params.additionalProperty);
  // A key is the client's (a record's, one a closed object does not take): as long as it sent, echoed twice.
  return path.length > 0 ? path.map(shownName).join(".") : undefined;
}

/** The route's schema of a request part ("body", "querystring", "params", "headers"), for reportedIssue. */
function partSchema(request: FastifyRequest, part: string): unknown {
  const schema: unknown = request.routeOptions?.schema;
  return typeof schema === "object" && schema !== null && Object.hasOwn(schema, part) ? (schema as Record<string, unknown>)[part] : undefined;
}

function partData(request: FastifyRequest, part: string): unknown {
  return part === "body" ? request.body : part === "querystring" ? request.query : part === "params" ? request.params : part === "headers" ? request.headers : undefined;
}

/** Fastify's own errors (body too large, unsupported media type, bad content length...): their messages are written for clients. */
const isFrameworkError = (err: { code?: unknown }): boolean => typeof err.code === "string" && err.code.startsWith("FST_");

/** The part of the request each of Fastify's own 4xx is about, named as the error's `field`. */
const FRAMEWORK_FIELDS: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "body",
  FST_ERR_CTP_EMPTY_JSON_BODY: "body",
  FST_ERR_CTP_INVALID_JSON_BODY: "body",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "content-type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "content-length",
};

/** The answer to a request no route takes (the not-found handler's, and ./request-framing.ts's before a body is read). */
export const routeNotFound = (request: FastifyRequest) => new HttpError(404, "NOT_FOUND", `Route ${request.method} ${pathOf(request.url)} not found`);

/**
 * The error as the handler answers it: a kit error with an answer of its own becomes that HttpError
 * (a LockWaitError `crowded`: tooManyWaiting, its own text, which names the lock, logged first), so
 * every HttpError is answered one way; any other error is itself.
 */
function answerOf<E extends Error>(err: E, request: FastifyRequest): E | HttpError {
  if (err instanceof LockWaitError && err.reason === "crowded") {
    request.log.warn({ err }, "too many requests wait for the same lock");
    return tooManyWaiting();
  }
  return err;
}

/** Installs the uniform error and not-found handlers (no stack traces to clients). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function installErrorHandlers(app: FastifyInstance<any, any, any, any, any>): void {
  app.setErrorHandler((raised: FastifyError & { validation?: ValidationIssue[]; validationContext?: string }, request, reply) => {
    const err = answerOf(raised, request);
    if (err instanceof HttpError) {
      if (err.headers) reply.headers(err.headers);
      // A route's wait cut by the shutdown (shuttingDown below) is a drain answer, not a failure.
      if (isShuttingDown(err)) markDrainAnswer(reply, `shutting down: ${err.message}`);
      else if (err.statusCode >= 500) {
        request.log.error({ err }, "request failed");
        recordError(err);
      }
      return reply.status(err.statusCode).send(errorBody(request, err.code, err.message, err.field));
    }
    if (err.validation && err.validation.length > 0) {
      const where = err.validationContext ?? "request";
      const issue = reportedIssue(err.validation, partSchema(request, where), partData(request, where));
      // An issue with the part itself (a required body left out or not an object: "must be object")
      // names the part: it named no field until session 52. A query parameter with no name names the query.
      const nameless = where === "querystring" && isNamelessParameterIssue(issue);
      const field = nameless ? NAMELESS_PARAMETER_FIELD : (fieldOf(issue) ?? (where === "body" ? "body" : undefined));
      const says =
        issue.keyword === "format" && issue.params?.format === "date-time" ? `must be ${INSTANT_RANGE}`
        : (issue.keyword === "pattern" ? displayTextRefusal(issue.params?.pattern) : undefined) ?? issue.message ?? "is invalid";
      const message = `Invalid ${where}: ${field && field !== where && !nameless ? `${field} ` : ""}${says}`;
      return reply.status(400).send(errorBody(request, "VALIDATION_ERROR", message, field));
    }
    if (isTransientError(err)) {
      // A datastore that cannot be reached or is overloaded (pool connect timeout, refused or reset
      // connection, serialization failure; ./transient-errors.ts) is an outage the client should
      // retry, not a fault in its request: 503 with Retry-After, not 500.
      request.log.error({ err }, "datastore unavailable");
      recordError(err);
      reply.header("retry-after", "1");
      return reply.status(503).send(errorBody(request, "DATASTORE_UNAVAILABLE", DATASTORE_UNAVAILABLE_MESSAGE));
    }
    const carried = typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    // A status on another library's error is what a far end answered the service, not a verdict on
    // the client's request: the card processor SDK's 401 for the platform's own API key (its message
    // echoing that key) was answered to the client as 401 with that message. Only Fastify's own
    // errors (FST_ codes) and those of a request the client abandoned keep their 4xx.
    const status = carried < 500 && !isFrameworkError(err) && !request.raw.destroyed ? 500 : carried;
    if (status >= 500) {
      request.log.error({ err }, "request failed");
      recordError(err);
      return reply.status(status).send(errorBody(request, statusCodes[status] ?? "INTERNAL_ERROR", status === 500 ? "Internal Server Error" : (statusCodes[status] ?? "Server error")));
    }
    // Fastify's own 4xx (body too large, bad JSON, unsupported media type, rate limit) carry safe messages.
    const code = status === 413 ? "PAYLOAD_TOO_LARGE" : (statusCodes[status] ?? "BAD_REQUEST");
    return reply.status(status).send(errorBody(request, code, err.message || code, FRAMEWORK_FIELDS[err.code]));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody(request, "NOT_FOUND", routeNotFound(request).message));
  });
}

export function sendError(reply: FastifyReply, request: FastifyRequest, status: number, code: string, message: string, field?: string) {
  return reply.status(status).send(errorBody(request, code, message, field));
}
