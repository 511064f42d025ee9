/**
 * A delivery waiting to go out (held by quiet hours, the rate limit or a retry) is sent only if the
 * user still wants its category on its channel when it goes out: the rule ingest applied when it was
 * queued (domain.ts channelsFor / wantsChannel) is applied again at send time, beside the address
 * check (notification-changed-address.test.ts). Before, a user who switched e-mail off for trading
 * notices was still mailed every fill queued before (tests/helpers/notification-rig.ts). No category is
 * exempt from the preferences (each one's channels may be chosen): a category left on still goes.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SWITCHED_OFF } from "../../services/src/services/notification-service/worker";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { waitUntil } from "../trading/e2e-helpers";

const rig = useNotificationRig();
const { run } = rig;

/** Quiet hours around now (UTC): a non-urgent notice waits, pending, until they end. */
const hhmm = (offsetMin: number) => new Date(Date.now() + offsetMin * 60_000).toISOString().slice(11, 16);
const quiet = () => ({ start: hhmm(-60), end: hhmm(120) });

/** Quiet hours end: the held deliveries are due now. */
const due = (userId: string) => rig.accounts.query("UPDATE nt_deliveries SET next_attempt_at = now() WHERE user_id = $1 AND status = 'pending'", [userId]);
const mailsOf = (orderId: string) => rig.mails.filter((m) => m.raw.includes(orderId));
const pendingCount = async (userId: string, n: number) => {
  const d = await rig.deliveries(userId);
  return d.length === n && d.every((x) => x.status === "pending") ? d : undefined;
};
const settled = async (userId: string) => (await rig.deliveries(userId)).every((d) => d.status !== "pending");

/** A fill (trading) and, when asked, an order rejection (risk) of the user, published. */
async function notices(userId: string, rejection: boolean) {
  const filled = `ord-${randomUUID()}`;
  const rejected = `ord-${randomUUID()}`;
  await rig.publish("trading.executions", filled, fill(userId, filled, 1));
  if (rejection) await rig.publish("trading.executions", rejected, { eventId: `${rejected}:engine-rejected`, type: "order.rejected", orderId: rejected, userId, symbol: "ETHUSDT", reason: "MAX_NOTIONAL", ts: Date.now() });
  return { filled, rejected };
}

describe("a held delivery after the user switched its channel off for its category", () => {
  it("is not sent once e-mail is off for trading: dead, a fixed reason; its webhook delivery and the risk notice (a category left on) still go", async () => {
    const email = `prefs-${run}@example.test`;
    const u = await rig.user({ email, quietHours: quiet() }, true);
    const o = await notices(u.id, true);
    await waitUntil("fill and rejection held on e-mail and webhook", () => pendingCount(u.id, 4), 120_000);

    const put = await rig.api("PUT", "/preferences", u.id, { email, telegramChatId: null, quietHours: quiet(), channels: { trading: ["webhook"] } });
    expect(put.body).toMatchObject({ emailVerified: true, channels: { trading: ["webhook"] } });
    await due(u.id);
    await waitUntil("the held deliveries sent or dead", () => settled(u.id), 120_000);

    expect(mailsOf(o.filled)).toEqual([]);
    expect(mailsOf(o.rejected).map((m) => m.to)).toEqual([[email]]);
    expect(u.receiver!.accepted.map((a) => a.body.type).sort()).toEqual(["order.filled", "order.rejected"]);
    const dead = (await rig.api("GET", "/dead-letters", u.id)).body.deadLetters;
    expect(dead).toMatchObject([{ channel: "email", kind: "order.filled", attempts: 1, reason: SWITCHED_OFF }]);
    const byChannelAndKind = Object.fromEntries((await rig.deliveries(u.id)).map((d) => [`${d.channel} ${d.kind}`, [d.status, d.lastError]]));
    expect(byChannelAndKind).toEqual({
      "email order.filled": ["dead", SWITCHED_OFF], "email order.rejected": ["sent", null],
      "webhook order.filled": ["sent", null], "webhook order.rejected": ["sent", null],
    });
  }, 300_000);

  it("is sent when the user switched the channel off and back on before it went out; off with every channel, it is not", async () => {
    const email = `back-${run}@example.test`;
    const gone = `off-${run}@example.test`;
    const back = await rig.user({ email, quietHours: quiet() });
    const off = await rig.user({ email: gone, quietHours: quiet() });
    const b = await notices(back.id, false);
    const f = await notices(off.id, false);
    await waitUntil("the fills held", async () => (await pendingCount(back.id, 1)) && pendingCount(off.id, 1), 120_000);

    const put = (id: string, address: string, channels: unknown) => rig.api("PUT", "/preferences", id, { email: address, telegramChatId: null, quietHours: quiet(), channels });
    expect((await put(back.id, email, { trading: [] })).status).toBe(200);
    expect((await put(back.id, email, { trading: ["email"] })).body).toMatchObject({ emailVerified: true });
    expect((await put(off.id, gone, { trading: [] })).status).toBe(200);
    await due(back.id);
    await due(off.id);
    await waitUntil("the held deliveries sent or dead", async () => (await settled(back.id)) && settled(off.id), 120_000);

    expect(mailsOf(b.filled).map((m) => m.to)).toEqual([[email]]);
    expect((await rig.api("GET", "/dead-letters", back.id)).body.deadLetters).toEqual([]);
    expect(mailsOf(f.filled)).toEqual([]);
    expect((await rig.api("GET", "/dead-letters", off.id)).body.deadLetters).toMatchObject([{ channel: "email", kind: "order.filled", reason: SWITCHED_OFF }]);
  }, 300_000);
});
