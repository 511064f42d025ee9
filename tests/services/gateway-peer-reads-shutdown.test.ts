/**
 * The api-gateway (in process, real Redis) closing while a request waits for user-management (a
 * stand-in holding every request): the user-state GET of a token's user (api-gateway/user-states.ts)
 * and the verify of an API key (authenticate.ts). Before session 53 these peer reads were bounded by
 * their 5 s alone: the close waited for them, and a user-state read the shutdown ended would have
 * been an AUTH_UNAVAILABLE. They are now cut PEER_CLOSE_GRACE_MS into the close (kit peers
 * `cutOnClose`): 503 SHUTTING_DOWN with `retry-after: 1`, naming the service by its public route.
 * So are (session 54) the reads of every routed service's /health by /api/health (api-gateway/health.ts)
 * and of their OpenAPI documents by /api/docs (docs.ts), with every routed service at the stand-in:
 * before, they were bounded by HEALTH_TIMEOUT_MS alone, and the close waited for them.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { catalog, serviceUrlEnvVar } from "../../services/src/catalog";
import { createService, jwtKey, OPENAPI_DOCUMENT_PATH, PEER_CLOSE_GRACE_MS, signAccessToken } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { generateApiKey } from "../../services/src/services/user-management/api-keys";
import { useHoldingStandIn } from "../helpers/http-stand-ins";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("redis");
const JWT_SECRET = randomBytes(64).toString("hex");
/** The stand-in user-management's requests, held unanswered, with their paths. */
const standIn = useHoldingStandIn();
const held = standIn.held;

/**
 * A gateway whose GET `url` with `headers` is waiting for the stand-in (`asked`: `count` requests for
 * `path` held); then closed: its answer and how long after the close began it came. `env` adds to the gateway's.
 */
async function closedWhileWaiting(headers: Record<string, string>, path: string, o: { url?: string; count?: number; env?: Record<string, string> } = {}) {
  const env = { ...srv.env, JWT_SECRET, LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: standIn.url, ...o.env };
  const gw = await createService(apiGateway, { env, defaultMetrics: false });
  try {
    const url = await gw.listen({ port: 0, host: "127.0.0.1" });
    const before = held.length;
    const answer = http("GET", `${url}${o.url ?? "/api/orders/"}`, { headers });
    const count = o.count ?? 1;
    await waitUntil(`the gateway asked the stand-in for ${path} ${count} times`, async () => held.slice(before).filter((h) => h.url.startsWith(path)).length >= count, 30_000, 20);
    const t0 = performance.now();
    const closed = gw.close();
    const r = await answer;
    const tookMs = performance.now() - t0;
    await closed;
    return { r, tookMs };
  } finally {
    await gw.close().catch(() => undefined);
  }
}

function cutByTheClose({ r, tookMs }: Awaited<ReturnType<typeof closedWhileWaiting>>, route = "/api/users/"): void {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(r.body.error).toMatchObject({ code: "SHUTTING_DOWN", message: expect.stringContaining(`its call to the service at ${route} was cut`) });
  expect(r.body.error.message).not.toContain("user-management");
  expect(r.headers.get("retry-after")).toBe("1");
  // The grace, not the read's 5 s bound: nothing holds the close past it.
  expect(tookMs).toBeGreaterThanOrEqual(PEER_CLOSE_GRACE_MS - 50);
  expect(tookMs).toBeLessThan(PEER_CLOSE_GRACE_MS + 3_000);
}

describe("the gateway closing while a request waits for user-management", { timeout: 120_000 }, () => {
  // With the fast lane (the default) the read is its credentials warm-up's; until session 55 the request was then
  // handed to Fastify, closing by then, whose answer was "the request was not started" instead of the cut call's.
  it.each([
    ["with the fast lane", "true"],
    ["without it", "false"],
  ])("a token's user-state read is cut within the grace: 503 SHUTTING_DOWN, not AUTH_UNAVAILABLE (%s)", async (_name, lane) => {
    const userId = randomUUID();
    const token = await signAccessToken(jwtKey(JWT_SECRET), { userId, role: "trader" }, 900);
    cutByTheClose(await closedWhileWaiting({ authorization: `Bearer ${token}` }, `/internal/users/${userId}/state`, { env: { GATEWAY_FAST_LANE: lane } }));
  });

  it("an API key's verify is cut within the grace: 503 SHUTTING_DOWN", async () => {
    cutByTheClose(await closedWhileWaiting({ "x-api-key": generateApiKey().key }, "/internal/api-keys/verify"));
  });
});

/** Every routed service at the stand-in, and reads bounded by 20 s: what the close waited for before session 54. */
const routed = catalog.filter((def) => def.route);
const HEALTH_TIMEOUT_MS = 20_000;
const allAtTheStandIn = () => ({ ...Object.fromEntries(routed.map((def) => [serviceUrlEnvVar(def.name), standIn.url])), HEALTH_TIMEOUT_MS: String(HEALTH_TIMEOUT_MS), REQUEST_TIMEOUT_MS: "60000" });

/** Cut within the grace, by the close: not a report or a document of services that did not answer HEALTH_TIMEOUT_MS later. */
function cutByTheCloseOfAny(waited: Awaited<ReturnType<typeof closedWhileWaiting>>): void {
  const { r, tookMs } = waited;
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(r.body.error).toMatchObject({ code: "SHUTTING_DOWN", message: expect.stringMatching(/its call to the service at \/api\/[a-z-]+\/ was cut/) });
  for (const def of catalog) expect(r.body.error.message).not.toContain(def.name);
  expect(r.headers.get("retry-after")).toBe("1");
  expect(tookMs).toBeGreaterThanOrEqual(PEER_CLOSE_GRACE_MS - 50);
  expect(tookMs).toBeLessThan(HEALTH_TIMEOUT_MS);
}

describe("the gateway closing while /api/health or /api/docs waits for the services", { timeout: 120_000 }, () => {
  it("/api/health: each service's /health is cut within the grace, a 503 SHUTTING_DOWN, not a degraded report", async () => {
    // Before: a 503 "degraded" report of services "down" (no answer within 20000 ms), HEALTH_TIMEOUT_MS into the close.
    cutByTheCloseOfAny(await closedWhileWaiting({}, "/health", { url: "/api/health", count: routed.length, env: allAtTheStandIn() }));
  });

  it("/api/docs/openapi.json: each service's document read is cut within the grace, a 503 SHUTTING_DOWN, not a document missing them", async () => {
    // Before: a 200 document naming every route in x-unavailable-routes, HEALTH_TIMEOUT_MS into the close.
    cutByTheCloseOfAny(await closedWhileWaiting({}, OPENAPI_DOCUMENT_PATH, { url: "/api/docs/openapi.json", count: routed.length, env: allAtTheStandIn() }));
  });
});
