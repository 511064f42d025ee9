/**
 * A body sent to a route that takes none is a 400, on every route: the body counterpart of
 * ./query-parameters.ts. A route without a body schema had whatever body it was sent parsed and
 * ignored (session 51's hostile round, tests/hostile/session-51.test.ts): `DELETE
 * /namespaces/:ns/keys/:key` with `{"expectedVersion": 1}` in the body (where PUT takes it) deleted
 * the key at whatever version it was, `POST /reconcile {"dryRun": true}` reconciled, and the client
 * never learnt its fields were not applied.
 *
 * - a route with a body schema is validated by it (ajv; `additionalProperties: false` names a field
 *   it does not take);
 * - a route without one takes none: at registration (settleBody, the kit's onRoute hook) it is given
 *   a preValidation check refusing a body with anything in it, a 400 naming its first field ("is not
 *   a field of this route: it takes no body"), or `body` for an array, a string or any other value.
 *   No body, an empty one, `{}` and `null` are taken (clients send `{}` out of habit);
 * - a route declaring `config: { takesAnyBody: true }` reads its body itself, unvalidated by a
 *   schema: the gateway's proxied `/api/*` (the service behind it judges), payment-service's webhook
 *   (verified against its signature as sent) and chain-debug's OTLP intake (its own parser).
 *   Declaring it beside a body schema is refused at registration.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from "fastify";
import { HttpError } from "./errors";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route reads its body itself, without a body schema: nothing is checked (./unread-bodies.ts). */
    takesAnyBody?: true;
  }
}

/** The 400 for a body sent to a route that takes none, or undefined when it says nothing. */
export function unreadBodyIssue(body: unknown): HttpError | undefined {
  if (body === undefined || body === null || body === "" || (Buffer.isBuffer(body) && body.length === 0)) return undefined;
  if (typeof body === "object" && !Array.isArray(body) && !Buffer.isBuffer(body)) {
    const [first] = Object.keys(body);
    if (first === undefined) return undefined;
    const shown = first.slice(0, 100);
    return new HttpError(400, "VALIDATION_ERROR", `Invalid body: ${shown} is not a field of this route (it takes no body)`, shown);
  }
  return takesNoBody();
}

const takesNoBody = () => new HttpError(400, "VALIDATION_ERROR", "Invalid body: this route takes no body (send none, or {})", "body");

/** A JSON media type: the kit's JSON parser's (an empty JSON body is refused there, so `""` under it is the JSON string). */
const JSON_TYPE = /^\s*application\/json\s*(;|$)/i;

function refuseUnreadBody(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  // `""` is an empty text body, or the JSON string "" (session 62: taken, where "x", 0 and false were refused).
  if (request.body === "" && JSON_TYPE.test(request.headers["content-type"] ?? "")) return done(takesNoBody());
  done(unreadBodyIssue(request.body));
}

/**
 * At registration (the kit's onRoute hook): a route without a body schema refuses a body with
 * anything in it (its preValidation hooks gain the check, first), unless it declares `config.takesAnyBody`.
 */
export function settleBody(route: Pick<RouteOptions, "method" | "url" | "schema" | "config" | "preValidation">): void {
  const declared = route.schema?.body !== undefined;
  if (route.config?.takesAnyBody === true) {
    if (declared) throw new Error(`${[route.method].flat().join(",")} ${route.url} declares both config.takesAnyBody and a body schema: it reads either any body or the one its schema declares`);
    return;
  }
  if (declared) return;
  const own = route.preValidation === undefined ? [] : [route.preValidation].flat();
  route.preValidation = [refuseUnreadBody, ...own] as RouteOptions["preValidation"];
}
