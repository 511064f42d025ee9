/**
 * configuration-service's HTTP routes (behind the gateway at /api/config):
 *   GET    /namespaces/:namespace                          all keys of a namespace (x-cache: hit|miss)
 *   GET    /namespaces/:namespace/keys/:key                one key
 *   PUT    /namespaces/:namespace/keys/:key                { value, expectedVersion? }  admin; 409 on version conflict
 *   DELETE /namespaces/:namespace/keys/:key?expectedVersion=n                           admin
 *   POST   /namespaces/:namespace/keys/:key/rollback       { version, expectedVersion? } admin; new version with that value
 *   GET    /namespaces/:namespace/keys/:key/versions?limit=n   history (who, when, old/new value, request id)
 *   GET    /namespaces/:namespace/audit?limit=n            the namespace's audit trail, newest first
 *   GET    /internal/namespaces/:namespace                 for peers (not proxied by the gateway)
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { notFound, requireIdentity, Type, type App } from "../../kit";
import { KEY_PATTERN, NAMESPACE_PATTERN, type ConfigStore } from "./store";

const Ns = Type.String({ pattern: NAMESPACE_PATTERN });
const Key = Type.String({ pattern: KEY_PATTERN });
const NsParams = Type.Object({ namespace: Ns });
const KeyParams = Type.Object({ namespace: Ns, key: Key });
const Limit = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false });
const ExpectedVersion = Type.Integer({ minimum: 0 });

/** `cacheState.errorLogged` is reset once the cache answers again, so each cache outage is logged once. */
export function registerRoutes(app: App, store: ConfigStore, cacheState: { errorLogged: boolean }): void {
  const actor = (req: FastifyRequest) => ({ changedBy: requireIdentity(req, "admin").userId, requestId: String(req.id) });

  const getNamespace = async (req: FastifyRequest<{ Params: { namespace: string } }>, reply: FastifyReply) => {
    const { snapshot, cache } = await store.snapshot(req.params.namespace);
    if (cache !== "error") cacheState.errorLogged = false;
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
}
