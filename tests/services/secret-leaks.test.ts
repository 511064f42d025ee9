/**
 * Secrets a far end or an operator hands back to a service, on real servers (PostgreSQL, Kafka):
 * whatever comes back must reach neither the client's answer nor the log.
 * - A card processor that refuses the platform's API key and echoes it in its 401 ("Invalid API
 *   Key provided: sk_live_..."): the kit answered the client 401 with the processor's message
 *   (a library error's status and message taken for Fastify's own), and logged nothing.
 * - An operator's URL with a login in a variable not declared secret (CLICKHOUSE_URL, ARANGO_URL), or
 *   a broker written `user:password@host:port`, refused at start: the error echoed the value whole.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, defineService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import notificationService from "../../services/src/services/notification-service";
import paymentService from "../../services/src/services/payment-service";

const srv = useServers("postgres", "kafka");
const API_KEY = `sk_live_${randomBytes(16).toString("hex")}`;
const lines: string[] = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    lines.push(String(chunk));
    done();
  },
});
let echoingProcessor: Server;
let payments: Service<any>;

beforeAll(async () => {
  // Answers every call as Stripe answers a wrong key, but with the key in full.
  echoingProcessor = createServer((req, res) => {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { type: "invalid_request_error", message: `Invalid API Key provided: ${String(req.headers.authorization).replace(/^Bearer /, "")}` } }));
  });
  await new Promise<void>((r) => echoingProcessor.listen(0, "127.0.0.1", r));
  const pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  await pool.end();
  payments = await createService(paymentService, {
    env: {
      ...srv.env,
      LOG_LEVEL: "trace",
      PAYMENT_PROCESSOR_URL: `http://127.0.0.1:${(echoingProcessor.address() as AddressInfo).port}`,
      PAYMENT_PROCESSOR_API_KEY: API_KEY,
      PAYMENT_WEBHOOK_SECRET: `whsec_${randomBytes(16).toString("hex")}`,
      PAYMENT_RECONCILE_INTERVAL_MS: "0",
    },
    defaultMetrics: false,
    logStream,
  });
}, 120_000);

afterAll(async () => {
  await payments?.close();
  await new Promise<void>((r) => (echoingProcessor ? echoingProcessor.close(() => r()) : r()));
});

describe("secrets echoed by a far end", () => {
  it("a card processor's 401 echoing the platform's API key: a 500 naming nothing, and the key masked in the log", async () => {
    const r = await payments.app.inject({ method: "POST", url: "/payment-methods", headers: { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" }, payload: { paymentMethod: "pm_card_visa" } });
    // The platform's key was refused, not the client's credentials: the client's request was fine.
    expect(r.statusCode, r.body).toBe(500);
    expect(r.json().error).toMatchObject({ code: "INTERNAL_ERROR", message: "Internal Server Error" });
    const secretHalf = API_KEY.slice("sk_live_".length);
    expect(r.body).not.toContain(secretHalf);
    const failed = lines.find((l) => l.includes('"request failed"'));
    // The failure is logged for the operator, saying what the processor said, without the key.
    expect(failed, lines.join("")).toContain("Invalid API Key provided");
    expect(lines.join("")).not.toContain(secretHalf);
  });
});

describe("secrets an operator put where they do not belong", () => {
  // Session 40's outbound-request hunt: both took `http` to any host, putting the processor's API key
  // (a header) or the bot token (the URL's path) on the wire in clear.
  it("PAYMENT_PROCESSOR_URL and TELEGRAM_API_URL refuse http at start except to a loopback host", async () => {
    const start = (mod: Parameters<typeof createService<any>>[0], env: Record<string, string>) =>
      createService(mod, { env: { ...srv.env, DRAGONFLY_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent", PAYMENT_RECONCILE_INTERVAL_MS: "0", ...env }, defaultMetrics: false, logStream }).then(
        async (s) => (await s.close(), undefined),
        (e: Error) => e,
      );
    for (const [mod, name] of [[paymentService, "PAYMENT_PROCESSOR_URL"], [notificationService, "TELEGRAM_API_URL"]] as const) {
      for (const refused of ["http://api.example.com", "http://10.0.0.5:8080", "http://127.0.0.1.example.com", "http://127.0.0.1@api.example.com/"]) {
        const e = await start(mod, { [name]: refused });
        expect(e?.message, `${name}=${refused}`).toContain(`${name} must be a URL with protocol https (http only to a loopback host`);
      }
      // Taken: the service starts, or fails later for want of what this file does not set up (notification-service's topics), never on the URL.
      for (const taken of ["https://api.example.com", "http://127.0.0.1:9", "http://localhost:9/", "http://[::1]:9"]) expect((await start(mod, { [name]: taken }))?.message ?? "", `${name}=${taken}`).not.toContain(name);
    }
  });

  // database-service: postgres required, every other datastore optional (so each variable is read).
  const probe = defineService({ name: "database-service", register() {} });

  it("a refused URL or broker is echoed with its password masked, still naming the variable", async () => {
    const password = `pw${randomBytes(12).toString("hex")}`;
    const cases: Array<[string, string, string]> = [
      ["CLICKHOUSE_URL", `clickhouse://reader:${password}@ch.internal:8123`, "clickhouse://reader:***@ch.internal:8123"],
      ["ARANGO_URL", `tcp://root:${password}/x@arango:8529`, "tcp://root:***@arango:8529"],
      ["KAFKA_BROKERS", `user:${password}@kafka:9092`, "user:***@kafka:9092"],
    ];
    for (const [name, value, shown] of cases) {
      const failure = await createService(probe, { env: { ...srv.env, LOG_LEVEL: "silent", [name]: value }, defaultMetrics: false, logStream }).then(
        async (s) => {
          await s.close();
          return new Error("started");
        },
        (e: Error) => e,
      );
      expect(failure.message, name).toContain(`${name} `);
      expect(failure.message, name).toContain(shown);
      expect(failure.message, name).not.toContain(password);
    }
    expect(lines.join("")).not.toContain(password);
  });
});
