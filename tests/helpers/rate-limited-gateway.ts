/**
 * The api-gateway in process (real Redis for its rate-limit counters) with a small request limit
 * over an hour, in front of a kit service in user-management's place whose anonymous
 * `POST /login` takes any body and counts what reaches it: the set-up of the tests of what the
 * limit does to a request while its body is read (tests/hostile/continue-rate-limit.test.ts,
 * tests/services/gateway-rate-limit-413.test.ts; before, each spelt it again). The gateway runs with
 * its defaults, the fast lane on as in production: a POST with a body is not the lane's (GET and HEAD
 * only), so it reaches Fastify's path, where the limit is counted at preParsing.
 */
import { afterAll, beforeAll } from "vitest";
import { createService, defineService, type Service } from "../../services/src/kit";
import apiGateway from "../../services/src/services/api-gateway";
import { useServers } from "../harness/shared";

export interface RateLimitedGateway {
  /** The gateway's base URL. */
  readonly url: string;
  /** The requests the service behind the gateway received. */
  readonly forwarded: number;
}

/** `limit` requests an hour for each client address; `env`: the gateway's other settings (BODY_LIMIT_BYTES...). */
export function useRateLimitedGateway(limit: number, env: Record<string, string> = {}): RateLimitedGateway {
  const srv = useServers("postgres", "redis");
  const started: Service<any>[] = [];
  const state = { url: "", forwarded: 0 };

  beforeAll(async () => {
    const base = { ...srv.env, JWT_SECRET: "s".repeat(64), LOG_LEVEL: "silent" };
    const upstream = await createService(
      defineService({ name: "user-management", register: async (ctx) => void ctx.app.post("/login", { config: { takesAnyBody: true } }, async () => (state.forwarded++, { ok: true })) }),
      { env: base, defaultMetrics: false },
    );
    started.push(upstream);
    const svc = await upstream.listen({ port: 0, host: "127.0.0.1" });
    const gateway = await createService(apiGateway, {
      env: { ...base, SERVICE_USER_MANAGEMENT_URL: svc, RATE_LIMIT_MAX_REQUESTS: String(limit), RATE_LIMIT_WINDOW_MS: "3600000", ...env },
      defaultMetrics: false,
    });
    started.push(gateway);
    state.url = await gateway.listen({ port: 0, host: "127.0.0.1" });
  }, 120_000);

  afterAll(async () => {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
  });

  return {
    get url() {
      return state.url;
    },
    get forwarded() {
      return state.forwarded;
    },
  };
}
