/**
 * notification-service on real PostgreSQL, Kafka and Redis, a real SMTP server, a local Telegram Bot
 * API and signature-checking webhook receivers (tests/helpers/notification-rig.ts).
 * Covers: a fill -> e-mail + Telegram + signed webhook, once despite redelivery; a risk rejection
 * told once from either topic; quiet hours hold ordinary notices but not a high compliance alert;
 * a failing webhook retried with backoff into the dead-letter table, then replayed; Telegram 429
 * retried, "chat not found" dead at once; the per-user-and-channel rate limit postpones; bad
 * input answers 400 naming the field. Confirming an e-mail address or a Telegram chat:
 * notification-confirmation.test.ts.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { pg } from "../harness";
import { createService } from "../../services/src/kit";
import notificationService from "../../services/src/services/notification-service";
import { deleteOldDeliveries } from "../../services/src/services/notification-service/data";
import { checkWebhookUrl, isPublicAddress, telegramChannel, webhookChannel } from "../../services/src/services/notification-service/channels";
import { backoffMs, deliverAfter } from "../../services/src/services/notification-service/domain";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { waitUntil } from "../trading/e2e-helpers";

const rig = useNotificationRig();
const { run } = rig;
const api = (method: string, url: string, userId: string, payload?: unknown, role = "trader") => rig.api(method, url, userId, payload, role);
const deliveries = (userId: string) => rig.deliveries(userId);
const publish = (topic: string, key: string, value: object) => rig.publish(topic, key, value);
const user = (prefs: Record<string, unknown>, webhook = false) => rig.user(prefs, webhook);

/** A webhook endpoint that answers 200 at once and then its body a byte every 300 ms for `forMs`. */
async function dribbler(forMs: number) {
  const d = { url: "", open: 0, requests: 0, server: undefined as Server | undefined };
  d.server = createServer((req, res) => {
    d.requests++;
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" });
    d.open++;
    const tick = setInterval(() => res.write("x"), 300);
    const end = setTimeout(() => res.end(), forMs);
    res.on("close", () => {
      d.open--;
      clearInterval(tick);
      clearTimeout(end);
    });
  });
  await new Promise<void>((r) => d.server!.listen(0, "127.0.0.1", r));
  d.url = `http://127.0.0.1:${(d.server.address() as AddressInfo).port}/hook`;
  const stop = () => new Promise<void>((r) => { d.server!.closeAllConnections(); d.server!.close(() => r()); });
  return { ...d, get open() { return d.open; }, get requests() { return d.requests; }, stop };
}

/** A server answering 200 and then `chunk` over and over as fast as the peer reads, until the peer hangs up. */
async function flooder(contentType: string, chunk: Buffer) {
  let closed = false;
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": contentType });
    const pump = () => {
      while (!closed && res.write(chunk));
      if (!closed) res.once("drain", pump);
    };
    res.on("close", () => (closed = true));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const stop = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, closed: () => closed, stop };
}

describe("notification-service", () => {
  it("a fill reaches e-mail (real SMTP), Telegram and a signed webhook, once despite redelivery", async () => {
    const chat = String(100_000 + Math.floor(Math.random() * 1e6));
    rig.telegram.chats.add(chat);
    const u = await user({ email: `trader-${run}@example.test`, telegramChatId: chat }, true);
    const orderId = `ord-${randomUUID()}`;
    const first = fill(u.id, orderId, 1);
    await publish("trading.executions", orderId, first);
    await publish("trading.executions", orderId, first); // redelivery: same event
    await publish("trading.executions", orderId, fill(u.id, orderId, 1, `${orderId}:other-id`)); // same fill, another event id
    await publish("trading.executions", orderId, fill(u.id, orderId, 2)); // marker: same partition, after the duplicates
    const mine = () => rig.mails.filter((m) => m.to.includes(`trader-${run}@example.test`) && !/Subject: Confirm your e-mail address/.test(m.raw));
    await waitUntil("both fills delivered on every channel", async () =>
      mine().length === 2 && rig.notices(chat).length === 2 && u.receiver!.accepted.length === 2, 120_000);
    expect(mine()[0].raw).toMatch(/^Subject: Filled: buy 0\.5 BTCUSDT @ 42000\.5\r?$/m);
    expect(mine()[0].raw).toContain(`Your order ${orderId} was filled`);
    expect(mine()[0].raw).toMatch(/^From: AI Trading <notify@example\.test>\r?$/m);
    expect(rig.notices(chat)[0].text).toContain("Filled: buy 0.5 BTCUSDT @ 42000.5");
    expect(u.receiver!.accepted.map((a) => a.id).sort()).toEqual([`fill:${orderId}:1`, `fill:${orderId}:2`]);
    expect(u.receiver!.accepted[0].body).toMatchObject({ type: "order.filled", data: { symbol: "BTCUSDT", side: "buy", quantity: "0.5", price: "42000.5" } });
    expect(u.receiver!.rejected).toBe(0);
    // The receivers have the messages; the service records "sent" right after each answer.
    const ds = await waitUntil("all recorded sent", async () => {
      const d = await deliveries(u.id);
      return d.every((x) => x.status === "sent") ? d : undefined;
    }, 60_000);
    expect(ds).toHaveLength(6);
    expect(ds.every((d: any) => d.attempts === 1)).toBe(true);
  }, 180_000);

  it("a risk rejection is told once from either topic; quiet hours hold a fill but not a high compliance alert", async () => {
    const now = new Date();
    const hhmm = (d: Date) => d.toISOString().slice(11, 16);
    const u = await user({ timeZone: "UTC", quietHours: { start: hhmm(new Date(now.getTime() - 3_600_000)), end: hhmm(new Date(now.getTime() + 3 * 3_600_000)) } }, true);
    const orderId = `ord-${randomUUID()}`;
    const order = { orderId, userId: u.id, symbol: "ETHUSDT", side: "buy", type: "market", quantity: "1", status: "rejected", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: "MAX_NOTIONAL", rejectMessage: "order notional exceeds the limit", lastPrice: "3000", createdAt: now.toISOString(), updatedAt: now.toISOString() };
    await publish("trading.orders", orderId, { eventId: `${orderId}:rejected`, type: "order.rejected", order, ts: Date.now() });
    await publish("trading.executions", orderId, { eventId: `${orderId}:engine-rejected`, type: "order.rejected", orderId, userId: u.id, symbol: "ETHUSDT", reason: "MAX_NOTIONAL", ts: Date.now() });
    await publish("trading.executions", orderId, fill(u.id, orderId, 1));
    await publish("compliance.alerts", u.id, { alertId: `wash:${orderId}`, rule: "wash_trade", userId: u.id, symbol: "ETHUSDT", severity: "high", message: "opposite fills at the same price", ts: Date.now(), evidence: [orderId] });
    await waitUntil("alert delivered", async () => u.receiver!.accepted.some((a) => a.body.type === "compliance.alert"), 120_000);
    // The receiver records the alert when it arrives; the worker marks it sent once the answer is back
    // (.ci/run of session 44 read it in between, under load): wait for both.
    const alertSent = (ds: any[]) => ds.some((d) => d.kind === "compliance.alert" && d.status === "sent");
    const ds = await waitUntil("three deliveries, the alert's marked sent", async () => {
      const found = await deliveries(u.id);
      return found.length === 3 && alertSent(found) ? found : undefined;
    }, 120_000);
    const byKind = Object.fromEntries(ds.map((d: any) => [d.kind, d]));
    expect(Object.keys(byKind).sort()).toEqual(["compliance.alert", "order.filled", "order.rejected"]);
    for (const kind of ["order.filled", "order.rejected"]) {
      expect(byKind[kind].status).toBe("pending");
      expect(Date.parse(byKind[kind].nextAttemptAt)).toBeGreaterThan(now.getTime() + 2 * 3_600_000); // the end of quiet hours
    }
    expect(byKind["compliance.alert"].status).toBe("sent");
  }, 180_000);

  // Session 38's hunt: a compliance notice carried the alert's message and evidence ("position 1100
  // beyond the limit 1000"), telling the trader the thresholds of the surveillance.
  it("a compliance alert tells the trader the rule, symbol and order, never the alert's message or evidence", async () => {
    const chat = String(100_000 + Math.floor(Math.random() * 1e6));
    rig.telegram.chats.add(chat);
    const u = await user({ email: `cm-${run}@example.test`, telegramChatId: chat }, true);
    const orderId = `ord-${randomUUID()}`;
    const secretFill = `fill-${randomUUID()}`;
    await publish("compliance.alerts", u.id, {
      alertId: `POSITION_LIMIT:${orderId}:1`, rule: "POSITION_LIMIT", userId: u.id, symbol: "ETHUSDT", severity: "high",
      message: "position 1100 beyond the limit 1000", ts: Date.now(), evidence: [secretFill, `${orderId}:1`], orderId,
    });
    const mail = () => rig.mails.find((m) => m.to.includes(`cm-${run}@example.test`) && /Compliance alert/.test(m.raw));
    await waitUntil("the alert on every channel", async () => !!mail() && rig.notices(chat).length === 1 && u.receiver!.accepted.length === 1, 120_000);
    const told = [mail()!.raw, rig.notices(chat)[0].text, JSON.stringify(u.receiver!.accepted[0].body), JSON.stringify(await deliveries(u.id))];
    for (const text of told) {
      expect(text).not.toMatch(/position 1100|limit 1000|beyond/);
      expect(text).not.toContain(secretFill.slice(5)); // the evidence
    }
    expect(rig.notices(chat)[0].text).toContain(`ETHUSDT, order ${orderId}; rule POSITION_LIMIT`);
    expect(u.receiver!.accepted[0].body).toMatchObject({ type: "compliance.alert", data: { rule: "POSITION_LIMIT", symbol: "ETHUSDT", orderId, severity: "high", summary: "the size of your position" } });
    expect(u.receiver!.accepted[0].body.data).not.toHaveProperty("message");
    expect(u.receiver!.accepted[0].body.data).not.toHaveProperty("evidence");
  }, 180_000);

  it("a failing webhook is retried with backoff into the dead-letter table, then replayed once", async () => {
    const u = await user({}, true);
    u.receiver!.failing = true;
    const orderId = `ord-${randomUUID()}`;
    await publish("trading.executions", orderId, fill(u.id, orderId, 1));
    const [dead] = await waitUntil("dead-lettered", async () => {
      const l = (await api("GET", "/dead-letters", u.id)).body.deadLetters;
      return l.length ? l : undefined;
    }, 120_000);
    expect(dead).toMatchObject({ channel: "webhook", attempts: 3, reason: "webhook: HTTP 503", notificationId: `fill:${orderId}:1`, replayedAt: null });
    expect((await api("GET", "/dead-letters?all=true", u.id)).status).toBe(403);
    expect((await api("GET", "/dead-letters?all=true", randomUUID(), undefined, "admin")).body.deadLetters.some((l: any) => l.id === dead.id)).toBe(true);
    expect((await api("POST", `/dead-letters/${dead.id}/replay`, randomUUID())).status).toBe(404);
    u.receiver!.failing = false;
    expect((await api("POST", `/dead-letters/${dead.id}/replay`, u.id)).status).toBe(200);
    await waitUntil("replayed delivery accepted", async () => u.receiver!.accepted.length === 1, 60_000);
    // The receiver has the request before the service records the answer: wait for the row.
    await waitUntil("replayed delivery recorded as sent", async () => (await deliveries(u.id))[0]?.status === "sent", 60_000);
    expect((await deliveries(u.id))[0]).toMatchObject({ status: "sent", attempts: 1 });
    const again = await api("POST", `/dead-letters/${dead.id}/replay`, u.id);
    // A 409 naming `id`, as database-service's replays of Kafka dead letters (kit dead-letter-replays.ts; session 52).
    expect([again.status, again.body.error.code, again.body.error.field]).toEqual([409, "ALREADY_REPLAYED", "id"]);
  }, 180_000);

  it("a deleted account is told nothing more: its deliveries on every channel die at send time", async () => {
    // Before, an admin's delete removed only the users row: e-mail, Telegram and webhooks went on.
    const chat = String(300_000 + Math.floor(Math.random() * 1e6));
    rig.telegram.chats.add(chat);
    const address = `deleted-${run}@example.test`;
    const u = await user({ email: address, telegramChatId: chat }, true);
    await rig.accounts.query("DELETE FROM users WHERE id = $1", [u.id]);
    const orderId = `ord-${randomUUID()}`;
    await publish("trading.executions", orderId, fill(u.id, orderId, 1));
    const dead = await waitUntil("three dead letters", async () => {
      const l = (await api("GET", "/dead-letters", u.id)).body.deadLetters;
      return l.length === 3 ? l : undefined;
    }, 120_000);
    expect(dead.map((l: any) => [l.channel, l.reason, l.attempts]).sort()).toEqual([["email", "the account was deleted", 1], ["telegram", "the account was deleted", 1], ["webhook", "the account was deleted", 1]]);
    expect(u.receiver!.accepted).toEqual([]);
    expect(rig.notices(chat)).toEqual([]);
    expect(rig.mails.filter((m) => m.to.includes(address) && !/Subject: Confirm your e-mail address/.test(m.raw))).toEqual([]);
  }, 180_000);

  it("Telegram: 429 is retried after retry_after; a chat gone is dead at once; the rate limit postpones", async () => {
    const chat = String(200_000 + Math.floor(Math.random() * 1e6));
    rig.telegram.chats.add(chat);
    const u = await user({ telegramChatId: chat, channels: { trading: ["telegram"] } });
    rig.telegram.throttle(1, 1);
    const orderId = `ord-${randomUUID()}`;
    for (let i = 1; i <= 5; i++) await publish("trading.executions", orderId, fill(u.id, orderId, i));
    // Limit 3 per user and channel per window: three go out, two wait for the next window.
    await waitUntil("three sent", async () => rig.notices(chat).length === 3, 120_000);
    const ds = await waitUntil("two postponed", async () => {
      const d = await deliveries(u.id);
      return d.filter((x) => x.lastError === "rate limited").length === 2 && d.filter((x) => x.status === "sent").length === 3 ? d : undefined;
    }, 60_000);
    expect(ds.filter((d: any) => d.status === "sent")).toHaveLength(3);
    // Postponed to the end of the rig's window (30 days, the longest the service takes), not retried sooner.
    const windowMs = Number(rig.env.NOTIFY_RATE_LIMIT_WINDOW_MS);
    const nextWindow = (Math.floor(Date.now() / windowMs) + 1) * windowMs;
    expect(ds.filter((d: any) => d.status === "pending").map((d: any) => Date.parse(d.nextAttemptAt))).toEqual([nextWindow, nextWindow]);

    // A chat confirmed, then gone (the bot blocked or removed): Telegram answers "chat not found".
    const gone = String(400_000 + Math.floor(Math.random() * 1e6));
    rig.telegram.chats.add(gone);
    const lost = await user({ telegramChatId: gone, channels: { trading: ["telegram"] } });
    rig.telegram.chats.delete(gone);
    const o2 = `ord-${randomUUID()}`;
    await publish("trading.executions", o2, fill(lost.id, o2, 1));
    const [dead] = await waitUntil("dead", async () => {
      const l = (await api("GET", "/dead-letters", lost.id)).body.deadLetters;
      return l.length ? l : undefined;
    }, 120_000);
    expect(dead).toMatchObject({ channel: "telegram", attempts: 1, reason: "telegram: chat not found or bot blocked (400)" });
    expect(JSON.stringify(dead)).not.toContain(rig.telegram.token);
  }, 180_000);

  it("names the bad field; webhook URLs must be https to public addresses", async () => {
    const id = randomUUID();
    const bad = async (body: object) => (await api("PUT", "/preferences", id, body)).body.error?.field;
    expect(await bad({ email: "not-an-email", telegramChatId: null })).toBe("email");
    // The shape of an address, but larger than SMTP delivers to (a 65-octet local part).
    expect(await bad({ email: `${"a".repeat(65)}@example.test`, telegramChatId: null })).toBe("email");
    expect(await bad({ email: null, telegramChatId: "@name" })).toBe("telegramChatId");
    expect(await bad({ email: null, telegramChatId: null, timeZone: "Mars/Olympus" })).toBe("timeZone");
    expect(await bad({ email: null, telegramChatId: null, quietHours: { start: "25:00", end: "07:00" } })).toBe("quietHours.start");
    expect(await bad({ email: null, telegramChatId: null, channels: { trading: ["pigeon"] } })).toBe("channels.trading.0");
    expect((await api("POST", "/webhooks", id, { url: "not a url" })).body.error.field).toBe("url");
    expect((await api("GET", "/preferences", "")).status).toBe(401);
    for (const url of ["http://example.com/h", "https://127.0.0.1/h", "https://10.1.2.3/h", "https://169.254.169.254/latest", "https://localhost/h", "https://[::1]/h", "https://[::ffff:10.0.0.1]/h", "https://u:p@example.com/h", "ftp://example.com",
      // A root dot and the IPv4-compatible block (URL writes [::127.0.0.1] as [::7f00:1]) were let through.
      "https://localhost./h", "https://foo.localhost./h", "https://[::127.0.0.1]/h", "https://[::]/h"]) {
      expect(checkWebhookUrl(url, false), url).not.toBeNull();
    }
    expect(checkWebhookUrl("https://hooks.example.com/path?x=1", false)).toBeNull();
    expect([isPublicAddress("8.8.8.8"), isPublicAddress("192.168.1.1"), isPublicAddress("::ffff:127.0.0.1"), isPublicAddress("fd00::1"), isPublicAddress("::7f00:1"), isPublicAddress("2001:4860:4860::8888")]).toEqual([true, false, false, false, false, true]);
  });

  // Session 64 (h6): `europe/berlin` was saved and answered as the client spelled it.
  it("a time zone in any case is saved and answered by its canonical name; a row saved before is answered so too", async () => {
    const u = await user({ timeZone: "europe/berlin", quietHours: { start: "22:00", end: "07:00" } });
    const pool = new pg.Pool({ connectionString: rig.env.POSTGRES_URL, max: 1 });
    try {
      const stored = async () => (await pool.query("SELECT time_zone FROM nt_preferences WHERE user_id = $1", [u.id])).rows[0].time_zone;
      expect(await stored()).toBe("Europe/Berlin");
      expect((await api("GET", "/preferences", u.id)).body.timeZone).toBe("Europe/Berlin");
      const put = await api("PUT", "/preferences", u.id, { email: null, telegramChatId: null, timeZone: "utc" });
      expect([put.status, put.body.timeZone]).toEqual([200, "UTC"]);
      expect(await stored()).toBe("UTC");
      // As a row saved before this change holds it: answered by the canonical name, no migration needed.
      await pool.query("UPDATE nt_preferences SET time_zone = 'europe/berlin' WHERE user_id = $1", [u.id]);
      expect((await api("GET", "/preferences", u.id)).body.timeZone).toBe("Europe/Berlin");
    } finally {
      await pool.end();
    }
  });

  it("30 concurrent webhook additions of one user add exactly the limit (5), the rest 409", async () => {
    const id = randomUUID();
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => api("POST", "/webhooks", id, { url: `https://hooks.example.com/h${i}` })));
    expect(rs.filter((r) => r.status === 201)).toHaveLength(5);
    expect(rs.filter((r) => r.status === 409)).toHaveLength(25);
    expect((await api("GET", "/webhooks", id)).body.webhooks).toHaveLength(5);
  });

  it("an endpoint answering a byte at a time: its send ends at the timeout, and other users' deliveries do not wait for it", async () => {
    const slow = await dribbler(120_000);
    try {
      const at = { at: new Date().toISOString() } as unknown as { at: string };
      await expect(webhookChannel({ timeoutMs: 1_000, allowPrivate: true }).send(slow.url, "whsec_x", { dedupKey: "d", kind: "fill", ...at, data: {} } as never)).rejects.toThrow(/no complete answer within 1000 ms/);
      const mallory = await user({});
      expect((await api("POST", "/webhooks", mallory.id, { url: slow.url })).status).toBe(201);
      const alice = await user({}, true);
      const before = slow.requests;
      const o1 = `ord-${randomUUID()}`;
      await publish("trading.executions", o1, fill(mallory.id, o1, 1));
      await waitUntil("mallory's endpoint is being read", async () => slow.requests > before && slow.open > 0, 60_000, 20);
      const o2 = `ord-${randomUUID()}`;
      await publish("trading.executions", o2, fill(alice.id, o2, 1));
      await waitUntil("alice's delivery", async () => alice.receiver!.accepted.length === 1, 60_000, 20);
      // Before, deliveries were sent one after another: alice's waited for mallory's answer to end.
      expect(slow.open).toBeGreaterThan(0);
    } finally {
      await slow.stop();
    }
  }, 180_000);

  it("an endpoint answering an endless body at full speed: the sender hangs up after 64 KiB, not at the timeout (session 40)", async () => {
    const flood = await flooder("application/octet-stream", Buffer.alloc(16 * 1024, 120));
    try {
      const at = { at: new Date().toISOString() } as unknown as { at: string };
      const url = `${flood.url}/hook`;
      // Before, the body was read until the 30 s timeout ("no complete answer within 30000 ms").
      const err = await webhookChannel({ timeoutMs: 30_000, allowPrivate: true }).send(url, "whsec_x", { dedupKey: "d", kind: "fill", ...at, data: {} } as never).then(() => undefined, (e: Error & { permanent: boolean }) => e);
      expect([err?.message, err?.permanent]).toEqual(["webhook: ANSWER_OVER_65536_BYTES", false]);
      await waitUntil("the endpoint's connection closed", async () => flood.closed(), 10_000, 20);
    } finally {
      await flood.stop();
    }
  });

  it("a Telegram API answering an endless body: refused after 64 KiB, not read whole (session 40)", async () => {
    const flood = await flooder("application/json", Buffer.from(`{"ok":true,"result":${"[".repeat(8192)}`));
    try {
      const url = flood.url;
      // Before, res.json() read it until the 30 s timeout, then the send failed as "telegram: 200".
      const err = await telegramChannel(url, "123:token", 30_000).send("42", { subject: "s", text: "t" }).then(() => undefined, (e: Error & { permanent: boolean }) => e);
      expect([err?.message, err?.permanent]).toEqual(["telegram: answer over 65536 bytes", false]);
      await waitUntil("the API's connection closed", async () => flood.closed(), 10_000, 20);
    } finally {
      await flood.stop();
    }
  });

  it("refuses a lease shorter than the slowest send plus a margin, naming the settings", async () => {
    const env = { ...rig.datastoreEnv, LOG_LEVEL: "silent", NOTIFY_LEASE_MS: "15000", NOTIFY_HTTP_TIMEOUT_MS: "10000" };
    await expect(createService(notificationService, { env, defaultMetrics: false })).rejects.toThrow(/NOTIFY_LEASE_MS \(15000\) must be at least 10000 ms above the slowest send \(10000 ms: NOTIFY_HTTP_TIMEOUT_MS\)/);
  });

  it("sent and dead deliveries older than the retention are deleted (dead letters with them); recent and pending ones stay", async () => {
    const pool = new pg.Pool({ connectionString: rig.env.POSTGRES_URL, max: 1 });
    try {
      const user = randomUUID();
      const add = (key: string, status: string, days: number) =>
        pool.query(
          // Next attempt a day away: the rig's running delivery worker would otherwise claim the pending
          // one (webhook 'w' exists for nobody) and mark it dead, and the pass would then delete it.
          `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, status, created_at, next_attempt_at)
           VALUES ($1, $2, 'webhook', 'w', 'fill', 's', 'b', '{}', $3, now() - make_interval(days => $4), now() + interval '1 day')`,
          [key, user, status, days],
        );
      for (const [key, status, days] of [["old-sent", "sent", 100], ["recent-sent", "sent", 10], ["old-pending", "pending", 100], ["old-dead", "dead", 100]] as const) await add(key, status, days);
      await pool.query("INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts) SELECT delivery_id, user_id, channel, 'gone', 8 FROM nt_deliveries WHERE dedup_key = 'old-dead' AND user_id = $1", [user]);
      // One batch over the whole table: a batch is the oldest deliveries by id, and these rows are old
      // by created_at alone (written now, dated back), so 1,000 younger rows of the file's other cases
      // ahead of them ended the loop before reaching them (session 44, run alone); in production ids
      // follow creation, so the oldest ids are the oldest rows.
      while ((await deleteOldDeliveries(pool, 90 * 86_400, 1_000_000)) > 0);
      const left = (await pool.query("SELECT dedup_key FROM nt_deliveries WHERE user_id = $1 ORDER BY delivery_id", [user])).rows.map((r) => r.dedup_key);
      // Dead ones were kept for ever before session 42 (notification-retention.test.ts).
      expect(left).toEqual(["recent-sent", "old-pending"]);
      expect((await pool.query("SELECT count(*)::int AS n FROM nt_dead_letters WHERE user_id = $1", [user])).rows[0].n).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it("domain: quiet hours across midnight in a time zone; exponential backoff", () => {
    const q = { start: "22:00", end: "07:00" };
    // 23:30 in Berlin (CET, UTC+1) is 22:30 UTC: held until 07:00 Berlin = 06:00 UTC.
    expect(deliverAfter(new Date("2026-01-15T22:30:00Z"), q, "Europe/Berlin").toISOString()).toBe("2026-01-16T06:00:00.000Z");
    expect(deliverAfter(new Date("2026-01-15T12:00:00Z"), q, "Europe/Berlin").toISOString()).toBe("2026-01-15T12:00:00.000Z");
    expect(deliverAfter(new Date("2026-01-15T05:59:00Z"), q, "Europe/Berlin").toISOString()).toBe("2026-01-16T06:00:00.000Z".replace("16", "15"));
    expect([1, 2, 3, 4, 10].map((a) => backoffMs(a, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000, 60_000]);
  });
});
