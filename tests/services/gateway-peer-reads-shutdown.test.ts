/**
 * The api-gateway (in process, real Redis) closing while a request waits for user-management (a
 * stand-in holding every request): the user-state GET of a token's user (api-gateway/user-states.ts)
 * and the verify of an API key (authenticate.ts). Before session 53 these peer reads were bounded by
 * their 5 s alone: the close waited for them, and a user-state read the shutdown ended would have
 * been an AUTH_UNAVAILABLE. They are now cut PEER_CLOSE_GRACE_MS into the close (kit peers
 * `cutOnClose`): 503 SHUTTING_DOWN with `retry-after: 1`, naming the service by its public route.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService, jwtKey, PEER_CLOSE_GRACE_MS, signAccessToken } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { generateApiKey } from "../../services/src/services/user-management/api-keys";
import { listen } from "../helpers/http-stand-ins";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("redis");
const JWT_SECRET = randomBytes(64).toString("hex");
let standIn: Server;
let standInUrl: string;
/** The stand-in user-management's requests, held unanswered, with their paths. */
const held: Array<{ url: string; res: ServerResponse }> = [];

beforeAll(async () => {
  standIn = createServer((req, res) => {
    req.resume();
    held.push({ url: req.url ?? "", res });
  });
  standInUrl = await listen(standIn);
});

afterAll(async () => {
  for (const h of held) h.res.socket?.destroy();
  standIn?.close();
});

/** A gateway whose request with `headers` is waiting for user-management at `path`; then closed: its answer and how long after the close began it came. */
async function closedWhileWaiting(headers: Record<string, string>, path: string) {
  const gw = await createService(apiGateway, { env: { ...srv.env, JWT_SECRET, LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: standInUrl }, defaultMetrics: false });
  try {
    const url = await gw.listen({ port: 0, host: "127.0.0.1" });
    const before = held.length;
    const answer = http("GET", `${url}/api/orders/`, { headers });
    await waitUntil(`the gateway asked user-management for ${path}`, async () => held.slice(before).some((h) => h.url.startsWith(path)), 30_000, 20);
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

function cutByTheClose({ r, tookMs }: Awaited<ReturnType<typeof closedWhileWaiting>>): void {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(r.body.error).toMatchObject({ code: "SHUTTING_DOWN", message: expect.stringContaining("its call to the service at /api/users/ was cut") });
  expect(r.body.error.message).not.toContain("user-management");
  expect(r.headers.get("retry-after")).toBe("1");
  // The grace, not the read's 5 s bound: nothing holds the close past it.
  expect(tookMs).toBeGreaterThanOrEqual(PEER_CLOSE_GRACE_MS - 50);
  expect(tookMs).toBeLessThan(PEER_CLOSE_GRACE_MS + 3_000);
}

describe("the gateway closing while a request waits for user-management", { timeout: 120_000 }, () => {
  it("a token's user-state read is cut within the grace: 503 SHUTTING_DOWN, not AUTH_UNAVAILABLE", async () => {
    const userId = randomUUID();
    const token = await signAccessToken(jwtKey(JWT_SECRET), { userId, role: "trader" }, 900);
    cutByTheClose(await closedWhileWaiting({ authorization: `Bearer ${token}` }, `/internal/users/${userId}/state`));
  });

  it("an API key's verify is cut within the grace: 503 SHUTTING_DOWN", async () => {
    cutByTheClose(await closedWhileWaiting({ "x-api-key": generateApiKey().key }, "/internal/api-keys/verify"));
  });
});
