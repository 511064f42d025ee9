/**
 * A Dragonfly (Redis protocol) pub/sub subscription that survives reconnects.
 *
 * ioredis re-subscribes by itself after a reconnect (autoResubscribe), but it sends that SUBSCRIBE
 * without handling its promise: when the connection closes before the reply (Dragonfly flapping,
 * or the service closing right after a reconnect) the rejection is unhandled, and Node ends the
 * process on an unhandled rejection. So the connection here has autoResubscribe off and subscribes
 * on every "ready" itself, every failure going to `onError`. Messages published while the
 * connection is down are lost (pub/sub keeps nothing): `onDown` tells the caller to distrust what
 * it cached, `onLive` that it is subscribed again.
 */
import type { Redis } from "ioredis";

export interface DragonflySubscriberOptions {
  /** Exact channels (SUBSCRIBE). */
  channels?: string[];
  /** Glob patterns (PSUBSCRIBE). */
  patterns?: string[];
  onMessage: (channel: string, message: string) => void;
  onError: (err: Error) => void;
  /** Subscribed (again): called after every successful (re)subscription. */
  onLive?: () => void;
  /** The connection dropped: messages may be missed until the next onLive. */
  onDown?: () => void;
}

export interface DragonflySubscriber {
  /** Resolves at the first successful subscription; never rejects (failures go to onError). */
  readonly ready: Promise<void>;
  /** True while subscribed. */
  readonly live: boolean;
  /**
   * Closes the connection; resolves once it has ended, every command sent on it settled (a
   * subscription in flight refused, to no one: `onError` is not called while closing).
   */
  close(): Promise<void>;
}

export function subscribeDragonfly(redis: Redis, o: DragonflySubscriberOptions): DragonflySubscriber {
  const channels = o.channels ?? [];
  const patterns = o.patterns ?? [];
  if (channels.length + patterns.length === 0) throw new Error("subscribeDragonfly: no channel and no pattern");
  const sub = redis.duplicate({ autoResubscribe: false, maxRetriesPerRequest: null, enableOfflineQueue: false });
  let live = false;
  let closing = false;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const ended = new Promise<void>((resolve) => sub.once("end", resolve));
  const down = () => {
    if (live) o.onDown?.();
    live = false;
  };
  sub.on("error", (e: Error) => o.onError(e));
  sub.on("close", down);
  sub.on("reconnecting", down);
  sub.on("message", (channel: string, message: string) => o.onMessage(channel, message));
  sub.on("pmessage", (_pattern: string, channel: string, message: string) => o.onMessage(channel, message));
  sub.on("ready", () => {
    Promise.all([channels.length ? sub.subscribe(...channels) : undefined, patterns.length ? sub.psubscribe(...patterns) : undefined]).then(
      () => {
        if (closing || sub.status !== "ready") return;
        live = true;
        o.onLive?.();
        markReady();
      },
      (e: Error) => {
        if (!closing) o.onError(e);
      },
    );
  });
  return {
    ready,
    get live() {
      return live;
    },
    async close() {
      closing = true;
      live = false;
      await sub.quit().catch(() => sub.disconnect());
      // A connection waiting to reconnect stays "reconnecting" once disconnect() cleared its timer
      // (ioredis): no socket, and nothing sent on it can settle any more. Any other ends: after QUIT's
      // answer, or the socket disconnect() closed (a refused connect included), its queue flushed.
      if (sub.status !== "reconnecting") await ended;
    },
  };
}
