/**
 * From notice to delivered message. `ingest` turns a notice into one delivery per channel target
 * the user wants (deduplicated by the unique key; an e-mail address or Telegram chat only once
 * confirmed: address-confirmation.ts), held until the end of quiet hours; the `Sender`
 * loop claims due deliveries, applies the per-user-and-channel rate limit to new messages (over the
 * limit = postponed to the next window, never dropped), sends, and on failure retries with exponential
 * backoff until the attempts run out, then dead-letters (replayable). When a delivery goes out, what
 * ingest checked is checked again (the account, the user's channels for the category, the confirmed
 * address): a delivery that no longer passes is dead-lettered with the reason, not sent.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { PostgresClient, Queryable } from "../../kit/datastores/postgres";
import { scrubString } from "../../kit/telemetry/scrub";
import { DeliveryError } from "./channels";
import { isConfirmedAddress } from "./address-confirmation";
import * as data from "./data";
import { backoffMs, channelsFor, deliverAfter, wantsChannel, type Channel, type Notice } from "./domain";

export interface Channels {
  email?: { send(to: string, n: Notice): Promise<void> };
  telegram?: { send(chatId: string, n: Notice): Promise<void> };
  webhook: { send(url: string, secret: string, n: Notice): Promise<void> };
}

/**
 * Queues the notice's deliveries; answers how many were queued and how many targets were left out
 * because their channel's backlog is full. At most `maxPendingPerChannel` deliveries of one user wait
 * on one channel (postponed by the rate limit or quiet hours, or retrying): a notice beyond that is not
 * queued there. Before, a user whose notices came faster than NOTIFY_RATE_LIMIT_MAX a window (an order
 * rejected or filled at the gateway's rate: 300 a minute against 30 an hour) queued rows without end,
 * all of them due again at every window's end, ahead of every other user's deliveries.
 */
export async function ingest(pg: Pick<PostgresClient, "transaction">, channels: Channels, n: Notice, o: { maxPendingPerChannel: number }, now = new Date()): Promise<{ queued: number; dropped: { channel: Channel; targets: number }[] }> {
  // Counted and queued in one transaction holding the user's backlog lock of each channel (data.lockBacklogs):
  // two replicas' notices, or a notice and a replay, of one user at once each saw the backlog before the other.
  return pg.transaction((db) => queueWithinBacklog(db, channels, n, o, now));
}

async function queueWithinBacklog(db: Queryable, channels: Channels, n: Notice, o: { maxPendingPerChannel: number }, now: Date): Promise<{ queued: number; dropped: { channel: Channel; targets: number }[] }> {
  const prefs = await data.preferences(db, n.userId);
  const hooks = await data.webhooks(db, n.userId);
  const available = new Set<Channel>();
  if (prefs.email && prefs.emailVerified && channels.email) available.add("email");
  if (prefs.telegramChatId && prefs.telegramVerified && channels.telegram) available.add("telegram");
  if (hooks.length) available.add("webhook");
  const wanted = channelsFor(n.category, prefs.channels, available);
  await data.lockBacklogs(db, n.userId, wanted);
  const pending = await data.pendingByChannel(db, n.userId, wanted, o.maxPendingPerChannel);
  const dropped: { channel: Channel; targets: number }[] = [];
  const targets = wanted.flatMap((channel): { channel: Channel; target: string }[] => {
    const all = channel === "email" ? [{ channel, target: prefs.email! }] : channel === "telegram" ? [{ channel, target: prefs.telegramChatId! }] : hooks.map((h) => ({ channel, target: h.id }));
    const room = Math.max(0, o.maxPendingPerChannel - (pending.get(channel) ?? 0));
    if (all.length > room) dropped.push({ channel, targets: all.length - room });
    return all.slice(0, room);
  });
  const notBefore = n.urgent ? now : deliverAfter(now, prefs.quietHours, prefs.timeZone);
  return { queued: await data.insertDeliveries(db, n, targets, notBefore), dropped };
}

/**
 * What a user reads when sending failed on our side (a database error, a bug, a library's error):
 * the error's own message reached `lastError` before (SQL, table names, hosts). The message, masked,
 * goes to the operator's log; the delivery is retried like any other failure.
 */
export const INTERNAL_ERROR = "internal error";

/** Why a delivery to an address that is not (or no longer) the user's confirmed one is not sent. */
const NOT_CONFIRMED = { email: "the e-mail address is not confirmed", telegram: "the Telegram chat is not confirmed" } as const;

/** Why a delivery on a channel the user switched off for its category (after it was queued) is not sent. */
export const SWITCHED_OFF = "the preferences changed: this channel is switched off for this category";

/** The furthest a rate-limited message is put off (in windows): a date stays a date; one due then is spread again. */
const MAX_WINDOWS_AHEAD = 1_000;

export interface SenderOptions { batch: number; leaseMs: number; maxAttempts: number; backoffBaseMs: number; backoffMaxMs: number; rateLimitMax: number; rateLimitWindowMs: number }

export class Sender {
  constructor(
    private readonly db: Queryable,
    private readonly redis: Redis,
    private readonly channels: Channels,
    private readonly o: SenderOptions,
    private readonly log: Logger,
    private readonly sent: Counter<"channel" | "outcome">,
  ) {}

  /** Deliveries being sent now (each claimed with its own lease). */
  private readonly sending = new Set<Promise<void>>();

  /**
   * Claims as many due deliveries as there is room for (`batch` sends at once) and starts sending
   * them; returns how many it claimed, without waiting for the sends. Once, a pass claimed a batch and
   * sent it one delivery at a time: one slow endpoint (an answer dribbled a byte at a time) held every
   * delivery behind it, every user's, until it finished, and a batch outlasting its lease was claimed
   * again by another replica and sent twice. Now each send is bounded (NOTIFY_HTTP_TIMEOUT_MS, the
   * SMTP clocks, within the lease: index.ts) and a slow one takes up only its own place.
   */
  async tick(): Promise<number> {
    const room = this.o.batch - this.sending.size;
    if (room <= 0) return 0;
    const due = await data.claimDue(this.db, room, this.o.leaseMs);
    for (const d of due) {
      const sending: Promise<void> = this.deliver(d)
        .catch((err: Error) => this.log.warn({ deliveryId: d.delivery_id, err: { message: err.message } }, "delivery failed to record; retried when its lease ends"))
        .finally(() => this.sending.delete(sending));
      this.sending.add(sending);
    }
    return due.length;
  }

  /** Resolves when the sends started so far have ended (shutdown). */
  async idle(): Promise<void> {
    while (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }

  /**
   * Fixed window per user and channel in Dragonfly; over the limit, the start of the window its place
   * beyond the limit reaches: the k-th message over it waits ceil(k / max) windows, so a backlog is
   * spread over the windows that can send it. Before, every message over the limit waited for the next
   * window alone, and all of them came due at its start, each to be claimed and postponed again (a
   * backlog of thousands churned at every window's end, ahead of every other user's deliveries).
   */
  private async limited(d: data.DeliveryRow): Promise<Date | null> {
    const now = Date.now();
    const windowStart = now - (now % this.o.rateLimitWindowMs);
    const key = `nt:rate:${d.user_id}:${d.channel}:${windowStart}`;
    const count = await this.redis.incr(key);
    if (count === 1) await this.redis.pexpire(key, this.o.rateLimitWindowMs * 2);
    if (count <= this.o.rateLimitMax) return null;
    const windowsAhead = Math.min(Math.ceil((count - this.o.rateLimitMax) / this.o.rateLimitMax), MAX_WINDOWS_AHEAD);
    return new Date(windowStart + windowsAhead * this.o.rateLimitWindowMs);
  }

  private async send(d: data.DeliveryRow): Promise<void> {
    const n = d.notice;
    // A deleted account is told nothing more, on any channel (only the gateway hears of a delete, so
    // its notices still came, and its preferences and webhooks stay): dead-lettered at send time.
    if (!(await data.accountExists(this.db, d.user_id))) throw new DeliveryError("the account was deleted", true);
    // One read of the preferences, and ingest's rule again: the user must still want the notice's category on
    // this channel, and the address it was queued for must still be their confirmed one (else not sent).
    const prefs = await data.preferences(this.db, d.user_id);
    if (!wantsChannel(n.category, prefs.channels, d.channel)) throw new DeliveryError(SWITCHED_OFF, true);
    if ((d.channel === "email" || d.channel === "telegram") && !isConfirmedAddress(prefs, d.channel, d.target)) throw new DeliveryError(NOT_CONFIRMED[d.channel], true);
    if (d.channel === "webhook") {
      const hook = await data.webhookById(this.db, d.target);
      if (!hook) throw new DeliveryError("webhook endpoint was deleted", true);
      return this.channels.webhook.send(hook.url, hook.secret, n);
    }
    const channel = this.channels[d.channel];
    if (!channel) throw new DeliveryError(`${d.channel} is not configured`, true);
    return channel.send(d.target, n);
  }

  private async deliver(d: data.DeliveryRow): Promise<void> {
    // The limit counts messages, not attempts: a retry of an admitted message is not counted again.
    const until = d.attempts === 0 ? await this.limited(d) : null;
    if (until) {
      this.sent.inc({ channel: d.channel, outcome: "rate_limited" });
      return data.postpone(this.db, d.delivery_id, until, "rate limited");
    }
    try {
      await this.send(d);
      await data.markSent(this.db, d.delivery_id);
      this.sent.inc({ channel: d.channel, outcome: "sent" });
    } catch (err) {
      const e = err instanceof DeliveryError ? err : new DeliveryError(INTERNAL_ERROR, false, undefined, scrubString(`${(err as Error)?.name ?? "Error"}: ${String((err as Error)?.message ?? err)}`.slice(0, 500)));
      const attempt = d.attempts + 1;
      // The user reads e.message (fixed texts); what the far end or the network said, masked, is for the operator.
      if (e.permanent || attempt >= this.o.maxAttempts) {
        await data.markDead(this.db, d, e.message);
        this.sent.inc({ channel: d.channel, outcome: "dead" });
        this.log.warn({ deliveryId: d.delivery_id, channel: d.channel, attempts: attempt, reason: e.message, detail: e.detail }, "notification dead-lettered");
        return;
      }
      if (e.detail) this.log.info({ deliveryId: d.delivery_id, channel: d.channel, attempts: attempt, reason: e.message, detail: e.detail }, "delivery attempt failed");
      const wait = Math.max(backoffMs(attempt, this.o.backoffBaseMs, this.o.backoffMaxMs), e.retryAfterMs ?? 0);
      await data.markFailed(this.db, d.delivery_id, e.message, new Date(Date.now() + wait));
      this.sent.inc({ channel: d.channel, outcome: "retry" });
    }
  }
}
