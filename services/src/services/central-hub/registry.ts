/**
 * Instance registry in Dragonfly: one key per instance with a PX TTL (a missed heartbeat = gone)
 * plus a sorted-set index (score = expiry ms) to list them without SCAN. Heartbeats and listings
 * drop index members whose expiry passed, so instances that stop beating (every pod of every past
 * deploy has an id of its own) leave the index even when nobody lists.
 */
import type { Redis } from "ioredis";

export type Health = "healthy" | "degraded" | "unhealthy";

export interface Instance {
  service: string;
  id: string;
  version: string;
  address: string;
  health: Health;
  metadata?: Record<string, string>;
  registeredAt: string;
  lastHeartbeat: string;
  ttlMs: number;
  expiresAt: string;
}

const INDEX = "hub:instances";
const instKey = (service: string, id: string) => `hub:instance:${service}:${id}`;
const member = (service: string, id: string) => `${service}\u0000${id}`;

export class InstanceRegistry {
  constructor(private readonly redis: Redis) {}

  async heartbeat(
    service: string,
    id: string,
    body: { version: string; address: string; health: Health; metadata?: Record<string, string> },
    ttlMs: number,
  ): Promise<{ instance: Instance; registered: boolean }> {
    const now = Date.now();
    const key = instKey(service, id);
    const at = (registeredAt: string): Instance => ({ service, id, ...body, registeredAt, lastHeartbeat: new Date(now).toISOString(), ttlMs, expiresAt: new Date(now + ttlMs).toISOString() });
    const write = (instance: Instance, onlyNew: boolean) => {
      const tx = this.redis.multi().zremrangebyscore(INDEX, "-inf", now);
      (onlyNew ? tx.set(key, JSON.stringify(instance), "PX", ttlMs, "NX") : tx.set(key, JSON.stringify(instance), "PX", ttlMs)).zadd(INDEX, now + ttlMs, member(service, id));
      return tx.exec();
    };
    // A known instance (the usual heartbeat) keeps its registeredAt: one read, one write. An unknown one
    // is registered by the one heartbeat whose SET NX makes the key: first heartbeats sent at once all
    // read no key and each answered "registered" with a registeredAt of its own (session 49's race suite).
    let prev = await this.redis.get(key);
    if (!prev) {
      const first = at(new Date(now).toISOString());
      if ((await write(first, true))?.[1]?.[1] === "OK") return { instance: first, registered: true };
      prev = await this.redis.get(key);
    }
    const instance = at(prev ? (JSON.parse(prev) as Instance).registeredAt : new Date(now).toISOString());
    await write(instance, false);
    return { instance, registered: !prev };
  }

  async deregister(service: string, id: string): Promise<boolean> {
    const [[, deleted]] = (await this.redis.multi().del(instKey(service, id)).zrem(INDEX, member(service, id)).exec()) as [[null, number], unknown];
    return deleted === 1;
  }

  async list(service?: string): Promise<Instance[]> {
    await this.redis.zremrangebyscore(INDEX, "-inf", Date.now());
    const members = await this.redis.zrange(INDEX, 0, -1);
    const wanted = members
      .map((m) => m.split("\u0000") as [string, string])
      .filter(([s]) => !service || s === service);
    if (wanted.length === 0) return [];
    const values = await this.redis.mget(...wanted.map(([s, i]) => instKey(s, i)));
    const out: Instance[] = [];
    const stale: string[] = [];
    values.forEach((v, i) => {
      if (v) out.push(JSON.parse(v) as Instance);
      else stale.push(member(...wanted[i]));
    });
    if (stale.length) await this.redis.zrem(INDEX, ...stale);
    return out.sort((a, b) => (a.service === b.service ? a.id.localeCompare(b.id) : a.service.localeCompare(b.service)));
  }
}
