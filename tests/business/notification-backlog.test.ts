/**
 * notification-service: what one user's notices beyond the per-user-and-channel rate limit leave behind
 * (session 42's business-logic hunt), on real PostgreSQL, Kafka and Redis (tests/helpers/notification-rig.ts).
 * A user whose notices come faster than NOTIFY_RATE_LIMIT_MAX a window (an order rejected or filled at the
 * gateway's rate: 300 a minute, against 30 notices an hour by default) queued deliveries without end, and
 * every message over the limit was postponed to the start of the next window: the whole backlog came due
 * there at once, ahead of every other user's deliveries, each to be claimed and postponed again.
 * Now at most NOTIFY_MAX_PENDING_PER_CHANNEL deliveries of a user wait on a channel (a notice beyond is not
 * queued there, counted as `notifications_total{outcome="dropped"}`), and the k-th message over the limit
 * waits ceil(k / max) windows, so a backlog is spread over the windows that can send it.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fill, useNotificationRig } from "../helpers/notification-rig";
import { waitUntil } from "../trading/e2e-helpers";

const MAX_PENDING = 20;
// The rig's rate limit: 3 a window of 30 days (the longest the service takes): no window rolls over here.
const rig = useNotificationRig(() => ({ NOTIFY_MAX_PENDING_PER_CHANNEL: String(MAX_PENDING) }));

async function statuses(userId: string): Promise<Record<string, number>> {
  const { rows } = await rig.accounts.query<{ status: string; n: number }>("SELECT status, count(*)::int AS n FROM nt_deliveries WHERE user_id = $1 GROUP BY status", [userId]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function dropped(channel: string): Promise<number> {
  const text = (await rig.svc.app.inject({ method: "GET", url: "/metrics" })).body;
  const line = text.split("\n").find((l) => l.startsWith("notifications_total{") && l.includes(`channel="${channel}"`) && l.includes('outcome="dropped"'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("notification-service: one user's backlog over the rate limit (session 42)", () => {
  it("at most NOTIFY_MAX_PENDING_PER_CHANNEL deliveries of a user wait on a channel; the notices beyond are dropped and counted", async () => {
    const mallory = await rig.user({}, true);
    const before = await dropped("webhook");
    const orderId = `ord-${randomUUID()}`;
    const notices = 150;
    for (let i = 1; i <= notices; i++) await rig.publish("trading.executions", orderId, fill(mallory.id, orderId, i));
    // Every notice is either a delivery (sent or waiting) or counted as dropped.
    const s = await waitUntil("every notice consumed", async () => {
      const st = await statuses(mallory.id);
      const total = Object.values(st).reduce((a, b) => a + b, 0) + (await dropped("webhook")) - before;
      return total === notices && (st.sent ?? 0) === 3 ? st : undefined;
    }, 120_000);
    // Before: 147 pending (and growing with every notice), none dropped.
    expect(s.pending).toBeLessThanOrEqual(MAX_PENDING);
    expect((await dropped("webhook")) - before).toBeGreaterThanOrEqual(notices - MAX_PENDING - 3);
    expect(mallory.receiver!.accepted).toHaveLength(3);

    // Another user's notice is queued and sent as before.
    const alice = await rig.user({}, true);
    const o2 = `ord-${randomUUID()}`;
    await rig.publish("trading.executions", o2, fill(alice.id, o2, 1));
    await waitUntil("alice's delivery", async () => alice.receiver!.accepted.length === 1, 60_000);
  }, 240_000);

  it("the messages over the rate limit wait as many windows as their place beyond it needs, not all for the next one", async () => {
    const bob = await rig.user({}, true);
    const orderId = `ord-${randomUUID()}`;
    for (let i = 1; i <= 12; i++) await rig.publish("trading.executions", orderId, fill(bob.id, orderId, i));
    const ds = await waitUntil("3 sent, 9 postponed", async () => {
      const d = await rig.deliveries(bob.id);
      return d.filter((x) => x.status === "sent").length === 3 && d.filter((x) => x.lastError === "rate limited").length === 9 ? d : undefined;
    }, 120_000);
    const windowMs = Number(rig.env.NOTIFY_RATE_LIMIT_WINDOW_MS);
    const next = (Math.floor(Date.now() / windowMs) + 1) * windowMs;
    const waits = ds.filter((d: any) => d.status === "pending").map((d: any) => (Date.parse(d.nextAttemptAt) - next) / windowMs).sort((a: number, b: number) => a - b);
    // Limit 3: the 1st-3rd over it wait for the next window, the 4th-6th one more, the 7th-9th two more
    // (before, all nine waited for the next window, to be claimed there together and six postponed again).
    expect(waits).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
  }, 240_000);
});
