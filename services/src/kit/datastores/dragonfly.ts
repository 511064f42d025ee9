/** DragonflyDB (Redis protocol): an ioredis client that fails fast while disconnected. */
import type { Logger } from "pino";
import type { Redis, RedisOptions } from "ioredis";
import type { DatastoreConfig } from "./env";

export function createDragonfly(cfg: DatastoreConfig["dragonfly"], log: Logger, extra: RedisOptions = {}) {
  const IORedis = (require("ioredis") as typeof import("ioredis")).default;
  const redis: Redis = new IORedis(cfg.DRAGONFLY_URL, {
    // Fail commands fast while disconnected instead of queueing forever; reconnect in the background.
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    commandTimeout: 5_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  });
  let lastError = "";
  redis.on("error", (err) => {
    // ioredis emits on every reconnect attempt; log each distinct message once.
    if (err.message !== lastError) log.warn({ err: { message: err.message } }, "dragonfly connection error");
    lastError = err.message;
  });
  redis.on("ready", () => {
    if (lastError) log.info("dragonfly connection restored");
    lastError = "";
  });
  return {
    redis,
    async ping() {
      await redis.ping();
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
export type DragonflyClient = ReturnType<typeof createDragonfly>;

