/**
 * Answers written outside Fastify (./client-errors.ts: what Node refuses before routing;
 * ./request-framing.ts: `Expect` judged before a request is emitted) carry what Fastify's answers
 * carry: the request id (in `x-request-id` and the body, as errorBody writes it: the id the service
 * gives its requests, see createApp's `ownRequestIds`) and the headers a service puts on every
 * answer with installAnswerHeaders (the gateway's security headers). Before session 50's fix these
 * answers had neither: a 413 or 417 from the gateway went out without HSTS, nosniff or a request id.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { FastifyInstance } from "fastify";

interface RawAnswerSettings {
  requestIdOf: (req: IncomingMessage) => string;
  headers: Readonly<Record<string, string>>;
}

const settings = new WeakMap<object, RawAnswerSettings>();
const defaults: RawAnswerSettings = { requestIdOf: () => randomUUID(), headers: {} };
const settingsOf = (server: Server): RawAnswerSettings => settings.get(server) ?? defaults;

/** How the server's requests are given their id (createApp's genReqId), for the answers written outside Fastify. */
export function setRawAnswerRequestIds(server: Server, requestIdOf: (req: IncomingMessage) => string): void {
  settings.set(server, { ...settingsOf(server), requestIdOf });
}

/** The id the server's app gives `req` (createApp's genReqId), for a request served outside Fastify (the gateway's fast lane). */
export const requestIdOf = (server: Server, req: IncomingMessage): string => settingsOf(server).requestIdOf(req);

/** The headers installAnswerHeaders put on every answer of the server's app (for an answer given before its hook runs). */
export const answerHeadersOf = (server: Server): Readonly<Record<string, string>> => settingsOf(server).headers;

/** Headers on every answer of `app`: Fastify's (an onRequest hook, first of all) and those written outside it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function installAnswerHeaders(app: FastifyInstance<any, any, any, any, any>, headers: Readonly<Record<string, string>>): void {
  settings.set(app.server, { ...settingsOf(app.server), headers: { ...settingsOf(app.server).headers, ...headers } });
  app.addHook("onRequest", (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
}

/**
 * A JSON error answer's headers and body, written outside Fastify (the connection closed after it).
 * `req`: the request when Node parsed one (its id is then taken as Fastify would take it); none for a
 * request Node could not parse (a new id).
 */
export function rawErrorAnswer(server: Server, req: IncomingMessage | undefined, a: { status: number; code: string; message: string; field?: string }): { headers: Record<string, string>; body: string } {
  const s = settingsOf(server);
  const requestId = req ? s.requestIdOf(req) : randomUUID();
  const body = JSON.stringify({ error: { code: a.code, message: a.message, requestId, ...(a.field ? { field: a.field } : {}) } });
  return {
    headers: { ...s.headers, "x-request-id": requestId, "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)), connection: "close" },
    body,
  };
}
