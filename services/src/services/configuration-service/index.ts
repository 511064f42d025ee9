/**
 * configuration-service: versioned per-namespace configuration (PostgreSQL), cached in Dragonfly,
 * changes published on `config:changes:<namespace>` (see notify.ts for the subscriber helpers).
 *
 * Layers: routes.ts (HTTP; the route list is there), store.ts (data access: PostgreSQL versions and
 * audit, the Dragonfly cache, value checks), notify.ts (change subscription helpers for peers).
 */
import { defineService, Type } from "../../kit";
import { registerRoutes } from "./routes";
import { ConfigStore } from "./store";

export { subscribeConfigChanges, watchNamespace, changeChannel, type ConfigChange } from "./notify";

export default defineService({
  name: "configuration-service",
  config: {
    CONFIG_MAX_VALUE_BYTES: Type.Integer({ default: 65_536, minimum: 16, maximum: 1_048_576, description: "largest JSON value per key" }),
    CONFIG_CACHE_TTL_SECONDS: Type.Integer({ default: 300, minimum: 1, maximum: 86_400 }),
  },
  register(ctx) {
    const cacheState = { errorLogged: false };
    const store = new ConfigStore(ctx.app.pg, ctx.app.redis, {
      cacheTtlSeconds: ctx.config.CONFIG_CACHE_TTL_SECONDS,
      maxValueBytes: ctx.config.CONFIG_MAX_VALUE_BYTES,
      onCacheError: (e) => {
        if (!cacheState.errorLogged) ctx.log.warn({ err: { message: e.message } }, "config cache unavailable, serving from postgres");
        cacheState.errorLogged = true;
      },
    });
    registerRoutes(ctx.app, store, cacheState);
  },
});
