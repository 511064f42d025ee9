/**
 * Confirming where notices go, on real servers (tests/helpers/notification-rig.ts): an e-mail
 * address or a Telegram chat gets notices only once its owner entered the code sent to it
 * (address-confirmation.ts). Wrong, expired and replayed codes, a changed address, resends, and at
 * most five codes an hour to one address or chat whoever asks.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { ensureAccount } from "../helpers/accounts";
import { waitUntil } from "../trading/e2e-helpers";

const rig = useNotificationRig();
const { run } = rig;
const api = (method: string, url: string, userId: string, payload?: unknown) => rig.api(method, url, userId, payload);
const deliveries = (userId: string) => rig.deliveries(userId);
const publish = (topic: string, key: string, value: object) => rig.publish(topic, key, value);
const user = (prefs: Record<string, unknown>, webhook = false) => rig.user(prefs, webhook);
const codeMailedTo = (address: string, after = 0) => rig.codeMailedTo(address, after);
/** A chat the fake Bot API knows. */
const newChat = () => {
  const chat = String(500_000 + Math.floor(Math.random() * 1e9));
  rig.telegram.chats.add(chat);
  return chat;
};
/** A user with an account and this chat id (unconfirmed), and what PUT answered. */
async function chatUser(chat: string) {
  const id = randomUUID();
  await ensureAccount(rig.accounts, id);
  const put = await api("PUT", "/preferences", id, { email: null, telegramChatId: chat, channels: { trading: ["telegram"] } });
  expect(put.status).toBe(200);
  return { id, put: put.body };
}
const verifyChat = (id: string, code: string) => api("POST", "/preferences/telegram/verify", id, { code });
const otherThan = (code: string, n = 0) => String(100_000 + n + (String(100_000 + n) === code ? 50 : 0));

describe("confirming where notices go", () => {
  it("an e-mail address gets notices only once confirmed with the code mailed to it; wrong codes, a changed address and resends", async () => {
    const id = randomUUID();
    const address = `confirm-${run}@example.test`;
    const put = await api("PUT", "/preferences", id, { email: address, telegramChatId: null });
    expect(put.body).toMatchObject({ email: address, emailVerified: false, emailVerification: "sent" });
    const first = await codeMailedTo(address);
    // Unconfirmed: a fill is not mailed (no e-mail delivery is even made).
    const o1 = `ord-${randomUUID()}`;
    await publish("trading.executions", o1, fill(id, o1, 1));
    const o2 = `ord-${randomUUID()}`;
    const u2 = await user({ email: null }, true);
    await publish("trading.executions", o2, fill(u2.id, o2, 1)); // another user's, on a webhook: when it is done, so is ours
    await waitUntil("the other user's delivery", async () => u2.receiver!.accepted.length === 1, 60_000);
    expect((await deliveries(id)).filter((d) => d.channel === "email")).toEqual([]);
    // A wrong code counts; a fresh code replaces the first; the right one confirms.
    const wrong = first === "000000" ? "000001" : "000000";
    const bad = await api("POST", "/preferences/email/verify", id, { code: wrong });
    expect([bad.status, bad.body.error.field, bad.body.error.message]).toEqual([400, "code", "wrong code (4 tries left for this code)"]);
    expect((await api("POST", "/preferences/email/verify", id, { code: "12345" })).body.error.field).toBe("code");
    const mailed = rig.mails.length;
    expect((await api("POST", "/preferences/email/code", id)).body).toEqual({ emailVerification: "sent" });
    const second = await codeMailedTo(address, mailed);
    if (second !== first) expect((await api("POST", "/preferences/email/verify", id, { code: first })).status).toBe(400);
    expect((await api("POST", "/preferences/email/verify", id, { code: second })).body).toEqual({ emailVerified: true });
    expect((await api("GET", "/preferences", id)).body).toMatchObject({ email: address, emailVerified: true });
    expect((await api("POST", "/preferences/email/code", id)).status).toBe(409);
    // The same address again (any case) stays confirmed; another one must be confirmed anew.
    expect((await api("PUT", "/preferences", id, { email: address.toUpperCase(), telegramChatId: null })).body.emailVerified).toBe(true);
    const other = `other-${run}@example.test`;
    expect((await api("PUT", "/preferences", id, { email: other, telegramChatId: null })).body).toMatchObject({ emailVerified: false, emailVerification: "sent" });
    await codeMailedTo(other);
    // Five wrong tries end the code.
    for (let i = 0; i < 5; i++) await api("POST", "/preferences/email/verify", id, { code: String(100000 + i) === (await codeMailedTo(other)) ? "999999" : String(100000 + i) });
    expect((await api("POST", "/preferences/email/verify", id, { code: await codeMailedTo(other) })).status).toBe(409);
    // At most five codes an hour per user (three so far: the first address's two, the other's one).
    for (let i = 0; i < 2; i++) expect((await api("POST", "/preferences/email/code", id)).status).toBe(200);
    const limited = await api("POST", "/preferences/email/code", id);
    expect([limited.status, limited.body.error.code]).toEqual([429, "TOO_MANY_CODES"]);
    // No address at all.
    expect((await api("POST", "/preferences/email/verify", randomUUID(), { code: "123456" })).status).toBe(409);
  }, 180_000);

  it("at most five codes an hour to one address, whoever asks: accounts naming a stranger's address do not mail it more", async () => {
    // Before, the limit was per user only: every account (free to make) naming the address mailed it five codes an hour.
    const victim = `stranger-${run}@example.test`;
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) outcomes.push((await api("PUT", "/preferences", randomUUID(), { email: victim.replace("stranger", i % 2 ? "STRANGER" : "stranger"), telegramChatId: null })).body.emailVerification);
    expect(outcomes).toEqual(["sent", "sent", "sent", "sent", "sent", "rate_limited", "rate_limited"]);
    const mailedToVictim = () => rig.mails.filter((m) => m.to.some((t) => t.toLowerCase() === victim)).length;
    await waitUntil("five codes mailed", async () => mailedToVictim() === 5, 60_000);
    // None more on its way: a code asked for after them, to another address, has arrived too.
    const later = `later-${run}@example.test`;
    expect((await api("PUT", "/preferences", randomUUID(), { email: later, telegramChatId: null })).body.emailVerification).toBe("sent");
    await codeMailedTo(later);
    expect(mailedToVictim()).toBe(5);
  });

  it("a Telegram chat gets notices only once confirmed with the code the bot posts to it", async () => {
    // Before, any chat id a user typed got the user's notices at once: a stranger's chat spammed by the platform's bot.
    const chat = newChat();
    const { id, put } = await chatUser(chat);
    const o1 = `ord-${randomUUID()}`;
    await publish("trading.executions", o1, fill(id, o1, 1));
    const marker = await user({}, true);
    await publish("trading.executions", o1, fill(marker.id, `ord-${randomUUID()}`, 1)); // same key, same partition: consumed after ours
    await waitUntil("the marker's delivery", async () => marker.receiver!.accepted.length === 1, 120_000);
    expect((await deliveries(id)).filter((d) => d.channel === "telegram")).toEqual([]);
    expect(rig.notices(chat)).toEqual([]);
    expect(put).toMatchObject({ telegramChatId: chat, telegramVerified: false, telegramVerification: "sent" });
    const code = await rig.codePostedTo(chat);
    expect(rig.telegram.messages.find((m) => m.chatId === chat)!.text).toMatch(/^Confirm this chat for AI Trading notifications\n\nYour confirmation code is \d{6}\./);
    expect((await api("GET", "/preferences", id)).body).toMatchObject({ telegramChatId: chat, telegramVerified: false });
    expect((await verifyChat(id, code)).body).toEqual({ telegramVerified: true });
    expect((await api("GET", "/preferences", id)).body).toMatchObject({ telegramChatId: chat, telegramVerified: true });
    const o2 = `ord-${randomUUID()}`;
    await publish("trading.executions", o2, fill(id, o2, 1));
    await waitUntil("the fill told in the confirmed chat", async () => rig.notices(chat).length === 1, 120_000);
    expect(rig.notices(chat)[0].text).toContain(`Your order ${o2} was filled`);
  }, 240_000);

  it("Telegram codes: wrong, expired and replayed are 4xx naming the field; a changed chat id is confirmed anew; tries and codes are limited", async () => {
    const a = newChat();
    const b = newChat();
    const { id } = await chatUser(a);
    const a1 = await rig.codePostedTo(a);
    const wrong = await verifyChat(id, otherThan(a1));
    expect([wrong.status, wrong.body.error.field, wrong.body.error.message]).toEqual([400, "code", "wrong code (4 tries left for this code)"]);
    expect((await verifyChat(id, "12345")).body.error.field).toBe("code");
    // Expired: the right code no longer confirms.
    await rig.accounts.query("UPDATE nt_preferences SET telegram_code_expires_at = now() - interval '1 second' WHERE user_id = $1", [id]);
    const expired = await verifyChat(id, a1);
    expect([expired.status, expired.body.error.field]).toEqual([409, "code"]);
    expect((await api("POST", "/preferences/telegram/code", id)).body).toEqual({ telegramVerification: "sent" });
    const a2 = await rig.codePostedTo(a, 1);
    expect((await verifyChat(id, a2)).body).toEqual({ telegramVerified: true });
    expect((await api("POST", "/preferences/telegram/code", id)).body.error.field).toBe("telegramChatId"); // already confirmed
    // The same chat written with leading zeros is the same chat: still confirmed, no code.
    expect((await api("PUT", "/preferences", id, { email: null, telegramChatId: `00${a}` })).body).toEqual(expect.objectContaining({ telegramChatId: a, telegramVerified: true }));
    expect(rig.codesPostedTo(a)).toHaveLength(2);
    // Another chat: unconfirmed, its own code; the used code replayed confirms nothing, nor after changing back.
    expect((await api("PUT", "/preferences", id, { email: null, telegramChatId: b })).body).toMatchObject({ telegramChatId: b, telegramVerified: false, telegramVerification: "sent" });
    await rig.codePostedTo(b);
    expect((await verifyChat(id, a2)).status).toBe(400);
    expect((await api("PUT", "/preferences", id, { email: null, telegramChatId: a })).body).toMatchObject({ telegramVerified: false, telegramVerification: "sent" });
    const a3 = await rig.codePostedTo(a, 2);
    const replayed = a3 !== a2; // a fresh code may repeat the old digits (one in a million): then there is no replay to try
    if (replayed) expect((await verifyChat(id, a2)).body.error.field).toBe("code");
    // Five wrong tries (the replay was one) end the code: the right one then finds none.
    for (let i = replayed ? 1 : 0; i < 5; i++) expect((await verifyChat(id, otherThan(a3, i + 1))).status).toBe(400);
    const usedUp = await verifyChat(id, a3);
    expect([usedUp.status, usedUp.body.error.field]).toEqual([409, "code"]);
    // Five codes a user an hour (four so far: a1, a2, b's, a3).
    expect((await api("POST", "/preferences/telegram/code", id)).status).toBe(200);
    const limited = await api("POST", "/preferences/telegram/code", id);
    expect([limited.status, limited.body.error.code, limited.body.error.field]).toEqual([429, "TOO_MANY_CODES", "telegramChatId"]);
    // No chat id at all.
    expect((await verifyChat(randomUUID(), "123456")).body.error.field).toBe("telegramChatId");
    expect((await api("POST", "/preferences/telegram/code", randomUUID())).body.error.field).toBe("telegramChatId");
  }, 240_000);

  it("at most five codes an hour to one chat, whoever asks: accounts naming a stranger's chat do not make the bot post more", async () => {
    const victim = newChat();
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) outcomes.push((await chatUser(i % 2 ? `0${victim}` : victim)).put.telegramVerification);
    expect(outcomes).toEqual(["sent", "sent", "sent", "sent", "sent", "rate_limited", "rate_limited"]);
    await waitUntil("five codes posted", async () => rig.codesPostedTo(victim).length === 5, 60_000);
    // None more on its way: a code asked for after them, in another chat, has been posted too.
    const later = newChat();
    expect((await chatUser(later)).put.telegramVerification).toBe("sent");
    await rig.codePostedTo(later);
    expect(rig.codesPostedTo(victim)).toHaveLength(5);
  });

  it("a delivery queued for a chat nobody confirmed (made before migration 0420) dies at send time", async () => {
    const chat = newChat();
    const { id } = await chatUser(chat);
    const notice = { dedupKey: `old-${randomUUID()}`, userId: id, kind: "order.filled", category: "trading", urgent: false, subject: "Filled", text: "an old notice", at: new Date().toISOString(), data: {} };
    await rig.accounts.query(
      `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, next_attempt_at) VALUES ($1, $2, 'telegram', $3, 'order.filled', 'Filled', 'an old notice', $4, now())`,
      [notice.dedupKey, id, chat, JSON.stringify(notice)],
    );
    const [dead] = await waitUntil("dead-lettered", async () => {
      const l = (await api("GET", "/dead-letters", id)).body.deadLetters;
      return l.length ? l : undefined;
    }, 120_000);
    expect(dead).toMatchObject({ channel: "telegram", attempts: 1, reason: "the Telegram chat is not confirmed" });
    expect(rig.notices(chat)).toEqual([]);
  }, 180_000);
});
