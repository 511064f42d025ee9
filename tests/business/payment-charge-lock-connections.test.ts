/**
 * payment-service's charge-lock connections (services/src/services/payment-service/charge-locks.ts)
 * are kept open, on real PostgreSQL and Kafka with the local card processor, the service started
 * whole behind a TCP proxy to PostgreSQL that holds every new connection 2.5 s before it reaches the
 * server: longer than PAYMENT_CHARGE_LOCK_WAIT_MS (2 s), shorter than POSTGRES_CONNECT_TIMEOUT_MS
 * (15 s here), as on a host at load 14 where making one took 4.3 s. Before, a charge made its lock
 * connection when it needed one, the making bounded by the charge's wait: each of these charges
 * answered 503 DATASTORE_UNAVAILABLE ("Connection terminated due to connection timeout"). Now the
 * connections are opened at start and again when one is dropped; the making is bounded by
 * POSTGRES_CONNECT_TIMEOUT_MS, a charge's wait by PAYMENT_CHARGE_LOCK_WAIT_MS, and a charge whose wait
 * ran out while connections were still being made answers 503 CHARGE_LOCKS_BUSY (nothing recorded or
 * sent; the refusal with every connection held is tests/business/payment-charge-locks.test.ts).
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import paymentService from "../../services/src/services/payment-service";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";
import { intentsWithKey, traderHeaders, usePaymentService } from "./payment-rig";

const LOCKS = "payment-service charge locks";
const CONNECTIONS = 3;
/** How long the proxy holds each new connection: over the charge's wait, under the making's bound. */
const MAKING_MS = 2_500;

/** application_name of a StartupMessage (Int32 length, Int32 protocol version, then name\0value\0 pairs); "" without one. */
function applicationNameOf(startup: Buffer): string {
  const fields = startup.subarray(8, startup.readInt32BE(0)).toString("utf8").split("\0");
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === "application_name") return fields[i + 1];
  return "";
}

/**
 * A TCP proxy to PostgreSQL that holds each new connection before it reaches the server, as a slow
 * host makes the making slow: the client's startup message (its application_name read from it) is
 * sent on once `admit` resolves; from then on bytes pass both ways unchanged.
 */
class ConnectionGate {
  admit: (applicationName: string) => Promise<void> = () => Promise.resolve();
  private readonly held = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  /** New connections of this application_name held now. */
  holding(applicationName: string): number {
    return this.held.get(applicationName) ?? 0;
  }

  async listen(): Promise<number> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  }

  private accept(client: Socket): void {
    this.track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 8 || head.length < head.readInt32BE(0)) return;
      client.off("data", onData);
      client.pause();
      void this.passOn(client, head);
    };
    client.on("data", onData);
  }

  private async passOn(client: Socket, head: Buffer): Promise<void> {
    const name = applicationNameOf(head);
    this.held.set(name, this.holding(name) + 1);
    try {
      // A client that gave up (its connect timeout) is not held on.
      await Promise.race([this.admit(name), once(client, "close")]);
    } catch {
      // Refused (admit threw): the client's making fails as on a server that cannot be reached.
      client.destroy();
      return;
    } finally {
      this.held.set(name, this.holding(name) - 1);
    }
    if (client.destroyed) return;
    const upstream = connect(this.port, this.host);
    this.track(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let gate: ConnectionGate;
/** While set, the lock connections wait for it after the making's delay. */
let locksShut: Promise<void> | undefined;
let openLocks = () => undefined as void;
/** While true, the lock connections are refused after the making's delay. */
let locksRefused = false;

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, {
  env: async (servers) => {
    const target = new URL(servers.POSTGRES_URL);
    gate = new ConnectionGate(target.hostname, Number(target.port));
    gate.admit = async (name) => {
      await sleep(MAKING_MS);
      if (name === LOCKS) await locksShut;
      if (name === LOCKS && locksRefused) throw new Error("refused");
    };
    const proxied = new URL(servers.POSTGRES_URL);
    proxied.port = String(await gate.listen());
    return {
      POSTGRES_URL: proxied.toString(),
      POSTGRES_CONNECT_TIMEOUT_MS: "15000",
      PAYMENT_CHARGE_LOCK_CONNECTIONS: String(CONNECTIONS),
      PAYMENT_CHARGE_LOCK_WAIT_MS: "2000",
    };
  },
});
// One account per connection: an account's charges hold at most half of them (account-shares.ts).
const traders = Array.from({ length: CONNECTIONS }, () => traderHeaders(randomUUID()));
const visas: string[] = [];

const chargeAt = (base: string, key: string, who = 0) => http("POST", `${base}/intents`, { body: { amount: 1500, currency: "usd", paymentMethod: visas[who] }, headers: { ...traders[who], "idempotency-key": key } });
const charge = (key: string, who = 0) => chargeAt(rig.base, key, who);
/** The lock connections' backends, as PostgreSQL sees them. */
const lockBackends = async () => (await rig.pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 ORDER BY pid", [LOCKS])).rows.map((r) => r.pid);
/** payment_charge_lock_connections{state} as the service reports it. */
async function lockConnections(): Promise<{ idle: number; held: number }> {
  const text = await (await fetch(`${rig.base}/metrics`)).text();
  const of = (state: string) => Number(text.match(new RegExp(`^payment_charge_lock_connections\\{state="${state}"[^}]*\\} (\\d+)`, "m"))?.[1] ?? NaN);
  return { idle: of("idle"), held: of("held") };
}
/** Every lock connection open and idle, in the service and at the server. */
const allOpen = async () => (await lockConnections()).idle === CONNECTIONS && (await lockBackends()).length === CONNECTIONS;

/** `CONNECTIONS` charges at once: each takes a lock connection already open. */
async function chargesAtOnce(): Promise<void> {
  const keys = Array.from({ length: CONNECTIONS }, () => randomUUID());
  const answers = await Promise.all(keys.map((key, who) => charge(key, who)));
  expect(answers.map((a) => [a.status, a.body.status, a.body.error?.code])).toEqual(keys.map(() => [201, "succeeded", undefined]));
}

beforeAll(async () => {
  for (const t of traders) visas.push(await rig.saveCard(t));
});

afterAll(async () => {
  openLocks();
  await gate?.close();
});

describe(`charge-lock connections on a host where making one takes ${MAKING_MS} ms (over the charge's wait)`, () => {
  it(`are opened at start and kept open: ${CONNECTIONS} charges at once each take one and succeed`, async () => {
    await waitUntil("the lock connections open", allOpen, 60_000);
    await chargesAtOnce();
    expect(await lockConnections(), "every connection handed back, none closed").toEqual({ idle: CONNECTIONS, held: 0 });
  }, 120_000);

  it("one the server ended is opened again, the charges then served as before", async () => {
    await waitUntil("the lock connections open", allOpen, 60_000);
    const [ended, ...kept] = await lockBackends();
    const { rows } = await rig.pool.query<{ ended: boolean }>("SELECT pg_terminate_backend($1) AS ended", [ended]);
    expect(rows[0].ended).toBe(true);
    await waitUntil("the ended connection opened again", async () => {
      const now = await lockBackends();
      return !now.includes(ended) && kept.every((pid) => now.includes(pid)) && (await allOpen());
    }, 60_000);
    await chargesAtOnce();
  }, 120_000);

  it("a charge whose wait ran out while they are being opened again is 503 CHARGE_LOCKS_BUSY with nothing recorded or sent; the connection it waited for is handed back, every one serving a charge once open", async () => {
    await waitUntil("the lock connections open", allOpen, 60_000);
    locksShut = new Promise<void>((resolve) => (openLocks = resolve));
    try {
      await rig.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1", [LOCKS]);
      // Every connection is being made again (held at the proxy until opened): none is free.
      await waitUntil("the lock connections being made again", async () => gate.holding(LOCKS) === CONNECTIONS && (await lockConnections()).idle === 0, 60_000);
      const created = fake.created;
      const key = randomUUID();
      const busy = await charge(key);
      expect([busy.status, busy.body.error?.code, busy.headers.get("retry-after")], JSON.stringify(busy.body)).toEqual([503, "CHARGE_LOCKS_BUSY", "15"]);
      expect(busy.body.error.message).toMatch(/being opened/);
      expect([fake.created, await intentsWithKey(rig, key)], "nothing sent, nothing recorded").toEqual([created, 0]);
    } finally {
      openLocks();
      locksShut = undefined;
    }
    await waitUntil("the lock connections open again", allOpen, 60_000);
    // None kept by the charge that gave up waiting: all three serve charges at once.
    await chargesAtOnce();
  }, 120_000);
});

/** /ready of the process at `base`: its status and the charge-lock check's result. */
async function readiness(base: string): Promise<{ status: number; locks: { status: string; required: boolean; error?: string } }> {
  const r = await http("GET", `${base}/ready`);
  return { status: r.status, locks: r.body.dependencies["charge-locks"] };
}

// Session 56: /ready did not wait for the lock connections, so right after start on a slow host a
// replica the probe called ready answered a charge 503 CHARGE_LOCKS_BUSY.
describe("readiness waits for the charge-lock connections (a second process of the service, started through the same proxy)", () => {
  let second: Service<any> | undefined;
  let url = "";

  afterAll(async () => {
    openLocks();
    locksRefused = false;
    await second?.close();
  });

  it("is not ready until every one is open, then ready, and a charge it takes then is served (not 503)", async () => {
    locksShut = new Promise<void>((resolve) => (openLocks = resolve));
    try {
      // READY_TIMEOUT_MS over the proxy's delay: the service pool's check may make a connection too.
      second = await createService(paymentService, { env: { ...rig.env, READY_TIMEOUT_MS: "10000" }, defaultMetrics: false });
      url = await second.listen({ port: 0, host: "127.0.0.1" });
      await waitUntil("the second process's lock connections held at the proxy", async () => gate.holding(LOCKS) === CONNECTIONS, 60_000);
      const starting = await readiness(url);
      expect([starting.status, starting.locks.status, starting.locks.required]).toEqual([503, "failed", true]);
      expect(starting.locks.error).toBe(`starting: 0 of ${CONNECTIONS} connections for card charges open, the rest being opened`);
    } finally {
      openLocks();
      locksShut = undefined;
    }
    await waitUntil("the second process ready", async () => (await readiness(url)).status === 200, 60_000);
    expect((await readiness(url)).locks.status).toBe("ok");
    const keys = Array.from({ length: CONNECTIONS }, () => randomUUID());
    const answers = await Promise.all(keys.map((key, who) => chargeAt(url, key, who)));
    expect(answers.map((a) => [a.status, a.body.status])).toEqual(keys.map(() => [201, "succeeded"]));
  }, 120_000);

  it("is not ready again while dropped ones cannot be opened again, naming nothing internal; ready once they are", async () => {
    await waitUntil("the second process ready", async () => (await readiness(url)).status === 200, 60_000);
    locksRefused = true;
    try {
      // Every process's lock connections ended (the rig's too: the same application_name); the proxy refuses them again.
      await rig.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1", [LOCKS]);
      const down = await waitUntil("not ready: the lock connections not opened again", async () => {
        const r = await readiness(url);
        return r.status === 503 && r.locks.status === "failed" ? r.locks : undefined;
      }, 60_000);
      expect(down.error).toMatch(new RegExp(`^\\d of ${CONNECTIONS} connections for card charges open: the rest could not be opened, tried again every 1 s$`));
      expect(down.error).not.toMatch(/postgres|payment|PAYMENT_|127\.0\.0\.1|terminated|charge locks/i);
    } finally {
      locksRefused = false;
    }
    await waitUntil("ready again", async () => (await readiness(url)).status === 200, 60_000);
    // (Both processes' connections are at the server now: the rig's counted by its own metrics.)
    await waitUntil("the rig's process's lock connections open again", async () => (await lockConnections()).idle === CONNECTIONS, 60_000);
  }, 120_000);
});
