/**
 * The sixth target of bench/gateway.ts: Nginx asks this authoriser by `auth_request` on every
 * request, uncached, and this answers with the api-gateway's own decision, made by the gateway's
 * own code on a bare node:http listener instead of Fastify: the URL check and route
 * (`upstreamTarget`), the cached authentication (`Authenticator.cached`, the slow path when it
 * cannot tell), the per-IP cap and the per-user rate limit on the same leased Dragonfly counters
 * (`GatewayLimits.checkIp`, `GatewayLimits.rateLimitStore`),
 * an API key's scopes. 204 with the identity headers when the request may pass, else the error's
 * status (Nginx passes only 401 and 403 on; a product would map the rest).
 * What it does not do, that the gateway does: the access line, the usage event, the Prometheus
 * updates, the whole-request timeout, the error bodies: so it measures the decision's cost, a
 * floor for a design where Nginx proxies and the gateway only decides.
 * `node --import tsx bench/lib/gateway-authoriser.ts` with PORT, DRAGONFLY_URL, JWT_SECRET,
 * SERVICE_USER_MANAGEMENT_URL, RATE_LIMIT_MAX_REQUESTS, RATE_LIMIT_WINDOW_MS set. Not a product.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { catalog } from "../../catalog";
import { HttpError, IDENTITY_HEADERS, jwtKey, PeerClient, type Identity } from "../../services/src/kit";
import { Authenticator, type Auth } from "../../services/src/services/api-gateway/authenticate";
import { GatewayLimits } from "../../services/src/services/api-gateway/limits";
import { assertKeyMay, isAnonymousTarget, upstreamTarget, type UpstreamTarget } from "../../services/src/services/api-gateway/proxy";
import { UserStates } from "../../services/src/services/api-gateway/user-states";
import { Redis } from "../../tests/harness/deps";

const env = (k: string) => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`${k} is required`);
  return v;
};
const max = Number(env("RATE_LIMIT_MAX_REQUESTS"));
const windowMs = Number(env("RATE_LIMIT_WINDOW_MS"));
const gateway = catalog.find((s) => s.entryPoint)!;
const routes = new Map(catalog.filter((s) => s.route && gateway.calls.includes(s.name)).map((s) => [s.route!, s]));

const redis = new Redis(env("DRAGONFLY_URL"), { maxRetriesPerRequest: 1 });
const peers = new PeerClient(gateway);
const states = new UserStates(redis, peers, 30_000, () => undefined);
states.start();
const limits = new GatewayLimits(redis, { windowMs, ipMax: max * 4, siteMax: max * 64, keyFailureMax: 10, keyFailureWindowMs: 300_000 });
// The per-user limit on the store the gateway's rate-limit plugin uses, under the same keys.
const perUser = new (limits.rateLimitStore("gw-rl:", max, windowMs))({});
const authenticator = new Authenticator({ key: jwtKey(env("JWT_SECRET")), maxTokenAgeS: 3_600, redis, peers, states, limits });
const targets = new Map<string, UpstreamTarget>();

function deny(res: ServerResponse, e: unknown): void {
  res.writeHead(e instanceof HttpError ? e.statusCode : 503);
  res.end();
}

function allow(res: ServerResponse, id: Identity): void {
  const headers: Record<string, string> = { [IDENTITY_HEADERS.userId]: id.userId, [IDENTITY_HEADERS.role]: id.role, [IDENTITY_HEADERS.authMethod]: id.authMethod };
  if (id.apiKeyId) headers[IDENTITY_HEADERS.apiKeyId] = id.apiKeyId;
  if (id.scopes) headers[IDENTITY_HEADERS.apiKeyScopes] = id.scopes.join(",");
  res.writeHead(204, headers);
  res.end();
}

/** The rest of the decision once the caller is known: per-IP cap, per-user limit, scopes. */
function decide(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, ip: string, auth: Auth): void {
  if (auth.error) return deny(res, auth.error);
  const id = auth.identity;
  if (!id) {
    if (isAnonymousTarget(target)) {
      res.writeHead(204);
      return void res.end();
    }
    return deny(res, new HttpError(401, "UNAUTHORIZED", "Authentication required"));
  }
  const method = String(req.headers["x-original-method"] ?? "GET");
  if (id.authMethod === "api-key" && !isAnonymousTarget(target)) {
    try {
      assertKeyMay(id.scopes ?? [], target.service.name, method, target.path);
    } catch (err) {
      return deny(res, err);
    }
  }
  // In the gateway's order: the per-IP cap (its onRequest hook), then the per-user limit (the
  // plugin's preHandler, failing open like skipOnError). Both answer synchronously under a live lease.
  const userLimit = () =>
    perUser.incr(`user:${id.userId}`, (err, hit) => (!err && hit !== undefined && hit.current > max ? deny(res, new HttpError(429, "RATE_LIMITED", "rate")) : allow(res, id)));
  let ipCap: Promise<void> | undefined;
  try {
    ipCap = limits.checkIp(ip); // throws (or rejects with) the 429 beyond the cap
  } catch (e) {
    return deny(res, e);
  }
  if (!ipCap) return userLimit();
  ipCap.then(userLimit, (e: unknown) => deny(res, e));
}

createServer((req, res) => {
  const uri = String(req.headers["x-original-uri"] ?? "");
  const ip = String(req.headers["x-forwarded-for"] ?? req.socket.remoteAddress);
  let target = targets.get(uri);
  try {
    if (!target) {
      target = upstreamTarget(uri, routes);
      targets.set(uri, target);
    }
    const known = authenticator.cached(req.headers);
    if (known) return decide(req, res, target, ip, known);
  } catch (e) {
    return deny(res, e);
  }
  const t = target;
  authenticator.authenticate(req.headers, ip, "bench", 30_000).then((a) => decide(req, res, t, ip, a));
}).listen(Number(env("PORT")), "127.0.0.1", () => process.stdout.write("listening\n"));
