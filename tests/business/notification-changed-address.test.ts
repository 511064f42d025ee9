/**
 * A delivery waiting on an e-mail address (held by quiet hours, the rate limit or a retry) goes out
 * only if that address is still the user's confirmed one when it is sent: a user who changed or
 * removed their address is not mailed at the old one any more (tests/helpers/notification-rig.ts).
 * Telegram chats were checked so at send time (notification-confirmation.test.ts); e-mail was not, and
 * every notice queued before the change (up to NOTIFY_MAX_PENDING_PER_CHANNEL, for days when rate
 * limited) was mailed to the address the user had left.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { waitUntil } from "../trading/e2e-helpers";

const rig = useNotificationRig();
const { run } = rig;

/** Quiet hours around now (UTC): a non-urgent notice waits, pending, until they end. */
const hhmm = (offsetMin: number) => new Date(Date.now() + offsetMin * 60_000).toISOString().slice(11, 16);
const quiet = () => ({ start: hhmm(-60), end: hhmm(120) });

/** A user whose confirmed address has a fill waiting for the end of quiet hours. */
async function heldMail(address: string) {
  const u = await rig.user({ email: address, quietHours: quiet() });
  const orderId = `ord-${randomUUID()}`;
  await rig.publish("trading.executions", orderId, fill(u.id, orderId, 1));
  const [held] = await waitUntil("the e-mail delivery held by quiet hours", async () => {
    const d = (await rig.deliveries(u.id)).filter((x) => x.channel === "email");
    return d.length ? d : undefined;
  }, 120_000);
  expect(held.status).toBe("pending");
  return { id: u.id, orderId };
}
/** Quiet hours end: the held deliveries are due now. */
const due = (userId: string) => rig.accounts.query("UPDATE nt_deliveries SET next_attempt_at = now() WHERE user_id = $1 AND status = 'pending'", [userId]);
const mailsOf = (orderId: string) => rig.mails.filter((m) => m.raw.includes(orderId));

describe("a held e-mail delivery after the user changed their address", () => {
  it("is not mailed to the old address once the user changed it or removed it: dead, a fixed reason; one only in other case goes out", async () => {
    const changed = await heldMail(`old-${run}@example.test`);
    const removed = await heldMail(`gone-${run}@example.test`);
    const recased = await heldMail(`case-${run}@example.test`);
    const put = (id: string, email: string | null) => rig.api("PUT", "/preferences", id, { email, telegramChatId: null, quietHours: quiet() });
    expect((await put(changed.id, `new-${run}@example.test`)).body).toMatchObject({ emailVerified: false, emailVerification: "sent" });
    expect((await put(removed.id, null)).body).toMatchObject({ email: null, emailVerified: false });
    // The same address in another case is the same mailbox, still confirmed.
    expect((await put(recased.id, `CASE-${run}@example.test`)).body).toMatchObject({ emailVerified: true });
    for (const u of [changed, removed, recased]) await due(u.id);

    const settled = async (id: string) => (await rig.deliveries(id)).every((d) => d.status !== "pending");
    await waitUntil("the held deliveries sent or dead", async () => (await settled(changed.id)) && (await settled(removed.id)) && (await settled(recased.id)), 120_000);
    expect(mailsOf(recased.orderId).map((m) => m.to)).toEqual([[`case-${run}@example.test`]]);
    for (const u of [changed, removed]) {
      expect(mailsOf(u.orderId).map((m) => m.to)).toEqual([]);
      const dead = (await rig.api("GET", "/dead-letters", u.id)).body.deadLetters;
      expect(dead).toMatchObject([{ channel: "email", attempts: 1, reason: "the e-mail address is not confirmed" }]);
    }
  }, 300_000);
});
