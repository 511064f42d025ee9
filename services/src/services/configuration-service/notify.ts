/**
 * Change notifications of configuration-service: one Redis pub/sub channel per namespace
 * (`config:changes:<namespace>`), a JSON `ConfigChange` per committed write. Other services use
 * `subscribeConfigChanges` (or `watchNamespace` to keep a local copy fresh).
 */
import type { Redis } from "ioredis";
import { subscribeDragonfly } from "../../kit";

export interface ConfigChange {
  namespace: string;
  key: string;
  version: number;
  operation: "set" | "delete" | "rollback";
  changedBy: string;
  changedAt: string;
  requestId: string;
}

export const CHANGE_CHANNEL_PREFIX = "config:changes:";
export const changeChannel = (namespace: string) => `${CHANGE_CHANNEL_PREFIX}${namespace}`;

export interface Subscription {
  /** Resolves once the subscription is active on the server. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Subscribes to changes of `namespaces` ("*" for all) on a dedicated connection duplicated from
 * `redis` (a subscribed connection cannot run other commands). Kit usage:
 *   const sub = subscribeConfigChanges(ctx.app.redis, ["risk-management"], onChange);
 *   ctx.onClose(() => sub.close());
 * Re-subscribes after every reconnect (kit subscribeDragonfly); changes published meanwhile are missed.
 */
export function subscribeConfigChanges(
  redis: Redis,
  namespaces: string[] | "*",
  onChange: (change: ConfigChange) => void | Promise<void>,
  onError: (err: Error) => void = () => undefined,
  /** Called after every (re)subscription: a change published while disconnected was missed. */
  onLive?: () => void,
): Subscription {
  const handle = (raw: string) => {
    let change: ConfigChange;
    try {
      change = JSON.parse(raw) as ConfigChange;
    } catch (e) {
      onError(e as Error);
      return;
    }
    Promise.resolve(onChange(change)).catch(onError);
  };
  const sub = subscribeDragonfly(redis, {
    ...(namespaces === "*" ? { patterns: [`${CHANGE_CHANNEL_PREFIX}*`] } : { channels: namespaces.map(changeChannel) }),
    onMessage: (_channel, message) => handle(message),
    onError,
    onLive,
  });
  return { ready: sub.ready, close: () => sub.close() };
}

/**
 * Keeps an in-memory copy of a namespace: loads it with `load` (e.g. a peer call to
 * configuration-service `GET /internal/namespaces/:ns`), reloads on every change notification.
 */
export function watchNamespace<T extends Record<string, { value: unknown; version: number }>>(
  redis: Redis,
  namespace: string,
  load: () => Promise<T>,
  onUpdate?: (entries: T, change?: ConfigChange) => void,
  onError?: (err: Error) => void,
) {
  let current: T | undefined;
  const refresh = async (change?: ConfigChange) => {
    current = await load();
    onUpdate?.(current, change);
  };
  let subscribedBefore = false;
  const sub = subscribeConfigChanges(redis, [namespace], (c) => refresh(c), onError, () => {
    // after a reconnect: reload, a change may have been published while the connection was down
    if (subscribedBefore) refresh().catch((e: Error) => onError?.(e));
    subscribedBefore = true;
  });
  const ready = sub.ready.then(() => refresh());
  return {
    ready,
    get: () => current,
    close: () => sub.close(),
  };
}
