/**
 * What a user reads of a failed delivery (`lastError` of GET /deliveries, a dead letter's `reason`):
 * the channels' `DeliveryError.message`, against real SMTP servers (`smtp-server` on loopback) and real
 * sockets. Session 40's hunts found two leaks there:
 * - an SMTP relay's refusal in its own words ("smtp: 535 Invalid login: ..."), so a relay echoing the
 *   login it refused showed it to users. Now a fixed class and the reply code; the relay's text,
 *   with the login masked, goes to the operator's log only (`detail`);
 * - a webhook's network failure as its code (ECONNREFUSED, a timeout, EPROTO, ENOTFOUND...): a
 *   scanner of public hosts' ports. Now one text for every failure before an HTTP answer.
 * And webhooks named any public port (`host:22`, `:25`): only NOTIFY_WEBHOOK_PORTS now (443 unless
 * the operator lists others), at registration (notification-webhook-dns.test.ts, production settings)
 * and again at delivery (here).
 */
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService } from "../../services/src/kit";
import { deadAddress, deadPort } from "../harness/dead-address";
import notificationService from "../../services/src/services/notification-service";
import { checkWebhookUrl, DeliveryError, emailChannel, WEBHOOK_UNREACHABLE, webhookChannel } from "../../services/src/services/notification-service/channels";

const USER = "notifier";
const PASSWORD = `pw${randomBytes(12).toString("hex")}`;
const RELAY_SECRET = `internal-${randomBytes(6).toString("hex")}`;
let relay: SMTPServer;
let relayPort = 0;
let plainHttp: Server;
let silent: TcpServer;
const silentSockets = new Set<Socket>();

const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
const mail = { dedupKey: "d", subject: "s", text: "t" };
const notice = { dedupKey: "d", kind: "fill", at: new Date().toISOString(), data: {} } as never;
async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

beforeAll(async () => {
  // A relay that refuses a wrong login echoing it (user and password), and one recipient in words naming its internals.
  relay = new SMTPServer({
    secure: false, disabledCommands: ["STARTTLS"], allowInsecureAuth: true, logger: false,
    onAuth: (auth, _s, cb) => (auth.password === PASSWORD ? cb(null, { user: auth.username }) : cb(new Error(`Invalid login: ${auth.username}/${auth.password}`))),
    onRcptTo: (addr, _s, cb) => (addr.address.startsWith("nobody@") ? cb(Object.assign(new Error(`mailbox unknown on ${RELAY_SECRET}`), { responseCode: 550 })) : cb()),
    onData: (stream, _s, cb) => stream.on("end", () => cb()).resume(),
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  relayPort = port(relay.server);
  plainHttp = createHttpServer((_req, res) => res.writeHead(204).end());
  await new Promise<void>((r) => plainHttp.listen(0, "127.0.0.1", r));
  // Accepts connections and never says a word.
  silent = createTcpServer((s) => silentSockets.add(s.on("close", () => silentSockets.delete(s))));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
});
afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await new Promise<void>((r) => (relay ? relay.close(() => r()) : r()));
  await new Promise<void>((r) => (plainHttp ? plainHttp.close(() => r()) : r()));
  await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
});

const smtp = (password: string, port = relayPort) =>
  emailChannel({ host: "127.0.0.1", port, secure: false, requireTls: false, rejectUnauthorized: true, user: USER, password, from: "AI Trading <notify@example.test>" });

describe("SMTP failures as users read them", () => {
  it("a relay refusing the login (and echoing it): 'smtp: authentication refused (535)'; its words only in the operator's detail, login masked", async () => {
    const wrong = `wrong${randomBytes(10).toString("hex")}`;
    const channel = smtp(wrong);
    try {
      const e = await failure(channel.send("trader@example.test", mail));
      // Before: "smtp: 535 Invalid login: notifier/wrong...", the password in the user's delivery history.
      expect([e.message, e.permanent]).toEqual(["smtp: authentication refused (535)", true]);
      expect(e.detail).toContain("Invalid login");
      expect(e.detail).not.toContain(wrong);
    } finally {
      channel.close();
    }
  });

  it("a relay refusing the recipient: 'smtp: recipient refused (550)', without the relay's words", async () => {
    const channel = smtp(PASSWORD);
    try {
      const e = await failure(channel.send(`nobody@example.test`, mail));
      expect([e.message, e.permanent]).toEqual(["smtp: recipient refused (550)", true]);
      expect(e.detail).toContain(RELAY_SECRET);
      await channel.send("trader@example.test", mail); // the right login and recipient pass
    } finally {
      channel.close();
    }
  });

  it("a relay that does not answer: 'smtp: relay unreachable', retried", async () => {
    const channel = smtp(PASSWORD, await deadPort());
    try {
      const e = await failure(channel.send("trader@example.test", mail));
      expect([e.message, e.permanent]).toEqual(["smtp: relay unreachable", false]);
    } finally {
      channel.close();
    }
  });
});

describe("webhook failures as users read them", () => {
  it("refused, not TLS, silent and unresolvable endpoints all read 'webhook: endpoint unreachable'; the operator's detail tells them apart", async () => {
    // Loopback targets need the tests' setting (private addresses allowed, the port rule with them).
    const channel = webhookChannel({ timeoutMs: 1_500, allowPrivate: true });
    const cases = {
      refused: `https://${await deadAddress()}/hook`,
      notTls: `https://127.0.0.1:${port(plainHttp)}/hook`,
      silent: `https://127.0.0.1:${port(silent)}/hook`,
      noSuchName: "https://no-such-host.invalid/hook",
    };
    const details: string[] = [];
    for (const [what, url] of Object.entries(cases)) {
      const e = await failure(channel.send(url, "whsec_x", notice));
      // Before: "webhook: ECONNREFUSED", "webhook: EPROTO", "webhook: no complete answer within 1500 ms", "webhook: ENOTFOUND".
      expect([what, e.message, e.permanent]).toEqual([what, WEBHOOK_UNREACHABLE, false]);
      details.push(e.detail ?? "");
    }
    expect(details[0]).toContain("ECONNREFUSED");
    expect(new Set(details).size).toBe(4);
    // An HTTP answer is still told as such (the endpoint's own status, nothing of the network).
    await channel.send(`http://127.0.0.1:${port(plainHttp)}/hook`, "whsec_x", notice);
  });

  it("a webhook URL naming a port other than NOTIFY_WEBHOOK_PORTS is refused at delivery too, before any connection (dead at once)", async () => {
    expect(checkWebhookUrl("https://hooks.example.com/h", false)).toBeNull();
    expect(checkWebhookUrl("https://hooks.example.com:443/h", false)).toBeNull();
    for (const p of [22, 25, 80, 8443]) expect(checkWebhookUrl(`https://hooks.example.com:${p}/h`, false), String(p)).toBe("must use port 443");
    expect(checkWebhookUrl("https://hooks.example.com:8443/h", false, [443, 8443])).toBeNull();
    // Registered while the operator allowed 8443, delivered after the setting changed: no DNS, no connection.
    const e = await failure(webhookChannel({ timeoutMs: 1_000, allowPrivate: false, ports: [443], dnsServers: ["127.0.0.1:9"] }).send("https://hooks.example.com:8443/h", "whsec_x", notice));
    expect([e.message, e.permanent]).toEqual(["webhook url must use port 443", true]);
  });

  it("NOTIFY_WEBHOOK_PORTS is validated at start, naming the variable", async () => {
    const env = { POSTGRES_URL: "postgresql://u:p@127.0.0.1:1/db", DRAGONFLY_URL: "redis://127.0.0.1:1", KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "silent" };
    for (const ports of ["443,70000", "0", "https", "443;22"]) {
      const e = await createService(notificationService, { env: { ...env, NOTIFY_WEBHOOK_PORTS: ports }, defaultMetrics: false }).then(
        async (s) => (await s.close(), new Error("started")),
        (err: Error) => err,
      );
      expect(e.message, ports).toContain("NOTIFY_WEBHOOK_PORTS has an invalid item");
    }
  });

  // Session 42: the stack refuses them (notifyWebhookPorts); a hand-set variable was taken.
  it("NOTIFY_WEBHOOK_PORTS refuses the Fetch standard's bad ports (SSH, SMTP, IMAP, ...) at start", async () => {
    const env = { POSTGRES_URL: "postgresql://u:p@127.0.0.1:1/db", DRAGONFLY_URL: "redis://127.0.0.1:1", KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "silent" };
    for (const [ports, bad] of [["443,22", "22"], ["25", "25"], ["8443,993", "993"]]) {
      const e = await createService(notificationService, { env: { ...env, NOTIFY_WEBHOOK_PORTS: ports }, defaultMetrics: false }).then(
        async (s) => (await s.close(), new Error("started")),
        (err: Error) => err,
      );
      expect(e.message, ports).toContain(`NOTIFY_WEBHOOK_PORTS has an invalid item "${bad}" (expected a TCP port, 1 to 65535, none of the Fetch standard's bad ports`);
    }
  });
  // Session 50: the stack refused another protocol's smtpPort; a hand-set SMTP_PORT was taken.
  it("SMTP_PORT refuses another protocol's port at start, the stack's smtpPort rule (the kept ports: tests/unit/service-env-bounds)", async () => {
    const env = { POSTGRES_URL: "postgresql://u:p@127.0.0.1:1/db", DRAGONFLY_URL: "redis://127.0.0.1:1", KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "silent", SMTP_HOST: "smtp.example.com" };
    // Session 65: a datastore's, the cluster's and the edge's ports too (catalog/addresses.ts smtpPortProblem).
    for (const port of ["22", "143", "5432", "6443", "443"]) {
      const e = await createService(notificationService, { env: { ...env, SMTP_PORT: port }, defaultMetrics: false }).then(
        async (s) => (await s.close(), new Error("started")),
        (err: Error) => err,
      );
      expect(e.message, port).toMatch(new RegExp(`SMTP_PORT ${port} is the port of .*speaks no SMTP`));
    }
  });
});
