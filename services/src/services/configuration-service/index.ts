/**
 * configuration-service: versioned per-namespace configuration (PostgreSQL), cached in Dragonfly,
 * changes published on `config:changes:<namespace>` (see notify.ts for the subscriber helpers).
 *
 * Routes (behind the gateway at /api/config):
 *   GET    /namespaces/:namespace                          all keys of a namespace (x-cache: hit|miss)
 *   GET    /namespaces/:namespace/keys/:key                one key
 *   PUT    /namespaces/:namespace/keys/:key                { value, expectedVersion? }  admin; 409 on version conflict
 *   DELETE /namespaces/:namespace/keys/:key?expectedVersion=n                           admin
 *   POST   /namespaces/:namespace/keys/:key/rollback       { version, expectedVersion? } admin; new version with that value
 *   GET    /namespaces/:namespace/keys/:key/versions?limit=n   history (who, when, old/new value, request id)
 *   GET    /namespaces/:namespace/audit?limit=n            the namespace's audit trail, newest first
 *   GET    /internal/namespaces/:namespace                 for peers (not proxied by the gateway)
 */
import { defineService, Type, notFound, requireIdentity, type ServiceContext } from "../../kit";
import type { FastifyRequest } from "fastify";
import { ConfigStore, KEY_PATTERN, NAMESPACE_PATTERN } from "./store";

export { subscribeConfigChanges, watchNamespace, changeChannel, type ConfigChange } from "./notify";

const Ns = Type.String({ pattern: NAMESPACE_PATTERN });
const Key = Type.String({ pattern: KEY_PATTERN });
const NsParams = Type.Object({ namespace: Ns });
const KeyParams = Type.Object({ namespace: Ns, key: Key });
const Limit = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false });
const ExpectedVersion = Type.Integer({ minimum: 0 });

export default defineService({
  name: "configuration-service",
  config: {
    CONFIG_MAX_VALUE_BYTES: Type.Integer({ default: 65_536, minimum: 16, maximum: 1_048_576, description: "largest JSON value per key" }),
    CONFIG_CACHE_TTL_SECONDS: Type.Integer({ default: 300, minimum: 1, maximum: 86_400 }),
  },
  register(ctx: ServiceContext<{ CONFIG_MAX_VALUE_BYTES: number; CONFIG_CACHE_TTL_SECONDS: number }>) {
    const { app } = ctx;
    let cacheErrorLogged = false;
    const store = new ConfigStore(ctx.datastores.postgres.pool, ctx.datastores.dragonfly.redis, {
      cacheTtlSeconds: ctx.config.CONFIG_CACHE_TTL_SECONDS,
      maxValueBytes: ctx.config.CONFIG_MAX_VALUE_BYTES,
      onCacheError: (e) => {
        if (!cacheErrorLogged) ctx.log.warn({ err: { message: e.message } }, "config cache unavailable, serving from postgres");
        cacheErrorLogged = true;
      },
    });
    const actor = (req: FastifyRequest) => ({ changedBy: requireIdentity(req, "admin").userId, requestId: String(req.id) });

    const getNamespace = async (req: FastifyRequest<{ Params: { namespace: string } }>, reply: import("fastify").FastifyReply) => {
      const { snapshot, cache } = await store.snapshot(req.params.namespace);
      if (cache !== "error") cacheErrorLogged = false;
      reply.header("x-cache", cache);
      return snapshot;
    };
    app.get("/namespaces/:namespace", { schema: { params: NsParams } }, getNamespace);
    app.get("/internal/namespaces/:namespace", { schema: { params: NsParams } }, getNamespace);

    app.get("/namespaces/:namespace/keys/:key", { schema: { params: KeyParams } }, async (req, reply) => {
      const { snapshot, cache } = await store.snapshot(req.params.namespace);
      reply.header("x-cache", cache);
      const e = snapshot.entries[req.params.key];
      if (!e) throw notFound(`${req.params.namespace}/${req.params.key} does not exist`);
      return { namespace: req.params.namespace, key: req.params.key, ...e };
    });

    app.put(
      "/namespaces/:namespace/keys/:key",
      {
        schema: {
          params: KeyParams,
          body: Type.Object({ value: Type.Unknown(), expectedVersion: Type.Optional(ExpectedVersion) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const who = actor(req);
        const change = await store.set(req.params.namespace, req.params.key, req.body.value, req.body.expectedVersion, who);
        return reply.status(change.created ? 201 : 200).send(change);
      },
    );

    app.delete(
      "/namespaces/:namespace/keys/:key",
      { schema: { params: KeyParams, querystring: Type.Object({ expectedVersion: Type.Optional(ExpectedVersion) }, { additionalProperties: false }) } },
      async (req) => store.delete(req.params.namespace, req.params.key, req.query.expectedVersion, actor(req)),
    );

    app.post(
      "/namespaces/:namespace/keys/:key/rollback",
      {
        schema: {
          params: KeyParams,
          body: Type.Object({ version: Type.Integer({ minimum: 1 }), expectedVersion: Type.Optional(ExpectedVersion) }, { additionalProperties: false }),
        },
      },
      async (req) => store.rollback(req.params.namespace, req.params.key, req.body.version, req.body.expectedVersion, actor(req)),
    );

    app.get("/namespaces/:namespace/keys/:key/versions", { schema: { params: KeyParams, querystring: Limit } }, async (req) => {
      const versions = await store.history(req.params.namespace, req.params.key, req.query.limit);
      if (versions.length === 0) throw notFound(`${req.params.namespace}/${req.params.key} has no history`);
      return { namespace: req.params.namespace, key: req.params.key, versions };
    });

    app.get("/namespaces/:namespace/audit", { schema: { params: NsParams, querystring: Limit } }, async (req) => ({
      namespace: req.params.namespace,
      changes: await store.audit(req.params.namespace, req.query.limit),
    }));
  },
});
