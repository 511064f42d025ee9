/**
 * configuration-service's HTTP routes (behind the gateway at /api/config):
 *   GET    /namespaces/:namespace                          all keys of a namespace (x-cache: hit|miss)
 *   GET    /namespaces/:namespace/keys/:key                one key
 *   PUT    /namespaces/:namespace/keys/:key                { value, expectedVersion? }  admin; 409 on version conflict
 *   DELETE /namespaces/:namespace/keys/:key?expectedVersion=n                           admin
 *   POST   /namespaces/:namespace/keys/:key/rollback       { version, expectedVersion? } admin; new version with that value
 *   GET    /namespaces/:namespace/keys/:key/versions?limit=n   history (who, when, old/new value, request id)  admin
 *   GET    /namespaces/:namespace/audit?limit=n            the namespace's audit trail, newest first           admin
 *   GET    /internal/namespaces/:namespace                 for peers (not proxied by the gateway)
 * The current values are for every caller the gateway let in; who wrote them (`updatedBy`, an admin's
 * user id) and their history (the admins' user ids, request ids and the values replaced) are the
 * admins' own (and the peers', on /internal).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { identityOf, notFound, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { KEY_PATTERN, NAMESPACE_PATTERN, type ConfigStore, type Entry, type Snapshot } from "./store";

const Ns = Type.String({ pattern: NAMESPACE_PATTERN });
const Key = Type.String({ pattern: KEY_PATTERN });
const NsParams = Type.Object({ namespace: Ns });
const KeyParams = Type.Object({ namespace: Ns, key: Key });
const Limit = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false });
/** Versions are PostgreSQL `integer`s: a larger one failed inside the query (a 500). */
const MAX_VERSION = 2_147_483_647;
const ExpectedVersion = Type.Integer({ minimum: 0, maximum: MAX_VERSION });

// Responses (OpenAPI; unnamed fields are kept).
const Operation = Type.Union([Type.Literal("set"), Type.Literal("delete"), Type.Literal("rollback")]);
const UpdatedBy = Type.Optional(Type.String({ description: "the admin who wrote the value: for admins only" }));
const EntryOut = ResponseObject({ value: Type.Unknown(), version: Type.Number(), updatedAt: Type.String(), updatedBy: UpdatedBy });
const SnapshotOut = ResponseObject({ namespace: Type.String(), entries: Type.Record(Type.String(), EntryOut) });
const KeyOut = ResponseObject({ namespace: Type.String(), key: Type.String(), value: Type.Unknown(), version: Type.Number(), updatedAt: Type.String(), updatedBy: UpdatedBy });
const ChangeOut = ResponseObject({ namespace: Type.String(), key: Type.String(), version: Type.Number(), operation: Operation, changedBy: Type.String(), changedAt: Type.String(), requestId: Type.String() });
const VersionOut = ResponseObject({ version: Type.Number(), operation: Operation, oldValue: Type.Unknown(), newValue: Type.Unknown(), changedBy: Type.String(), changedAt: Type.String(), requestId: Type.Union([Type.String(), Type.Null()]), rollbackOf: Type.Union([Type.Number(), Type.Null()]) });
const VersionsOut = ResponseObject({ namespace: Type.String(), key: Type.String(), versions: Type.Array(VersionOut) });
const AuditOut = ResponseObject({ namespace: Type.String(), changes: Type.Array(Type.Intersect([VersionOut, ResponseObject({ key: Type.String() })])) });

/** An entry as `req`'s caller may see it: who wrote it (an admin's user id) for admins only. */
function entryFor(req: FastifyRequest, e: Entry): Entry | Omit<Entry, "updatedBy"> {
  if (identityOf(req)?.role === "admin") return e;
  const { updatedBy: _by, ...rest } = e;
  return rest;
}
/** The snapshot as `req`'s caller may see it (the cached snapshot is every caller's, so this is per request). */
function snapshotFor(req: FastifyRequest, s: Snapshot) {
  return { namespace: s.namespace, entries: Object.fromEntries(Object.entries(s.entries).map(([k, e]) => [k, entryFor(req, e)])) };
}

/** `cacheState.errorLogged` is reset once the cache answers again, so each cache outage is logged once. */
export function registerRoutes(app: App, store: ConfigStore, cacheState: { errorLogged: boolean }): void {
  const actor = (req: FastifyRequest) => ({ changedBy: requireIdentity(req, "admin").userId, requestId: String(req.id) });

  const getNamespace = async (namespace: string, reply: FastifyReply) => {
    const { snapshot, cache } = await store.snapshot(namespace);
    if (cache !== "error") cacheState.errorLogged = false;
    reply.header("x-cache", cache);
    return snapshot;
  };
  app.get("/namespaces/:namespace", { schema: { params: NsParams, response: { 200: SnapshotOut } } }, async (req, reply) => snapshotFor(req, await getNamespace(req.params.namespace, reply)));
  app.get("/internal/namespaces/:namespace", { schema: { params: NsParams } }, async (req, reply) => getNamespace(req.params.namespace, reply));

  app.get("/namespaces/:namespace/keys/:key", { schema: { params: KeyParams, response: { 200: KeyOut } } }, async (req, reply) => {
    const { snapshot, cache } = await store.snapshot(req.params.namespace);
    reply.header("x-cache", cache);
    // Own keys only: a key named "constructor" or "__proto__" must not find Object.prototype's.
    const e = Object.hasOwn(snapshot.entries, req.params.key) ? snapshot.entries[req.params.key] : undefined;
    if (!e) throw notFound(`${req.params.namespace}/${req.params.key} does not exist`);
    return { namespace: req.params.namespace, key: req.params.key, ...entryFor(req, e) };
  });

  app.put(
    "/namespaces/:namespace/keys/:key",
    {
      schema: {
        params: KeyParams,
        body: Type.Object({ value: Type.Unknown(), expectedVersion: Type.Optional(ExpectedVersion) }, { additionalProperties: false }),
        response: { 200: ChangeOut, 201: ChangeOut },
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
    { schema: { params: KeyParams, querystring: Type.Object({ expectedVersion: Type.Optional(ExpectedVersion) }, { additionalProperties: false }), response: { 200: ChangeOut } } },
    async (req) => store.delete(req.params.namespace, req.params.key, req.query.expectedVersion, actor(req)),
  );

  app.post(
    "/namespaces/:namespace/keys/:key/rollback",
    {
      schema: {
        params: KeyParams,
        body: Type.Object({ version: Type.Integer({ minimum: 1, maximum: MAX_VERSION }), expectedVersion: Type.Optional(ExpectedVersion) }, { additionalProperties: false }),
        response: { 200: ChangeOut },
      },
    },
    async (req) => store.rollback(req.params.namespace, req.params.key, req.body.version, req.body.expectedVersion, actor(req)),
  );

  app.get("/namespaces/:namespace/keys/:key/versions", { schema: { params: KeyParams, querystring: Limit, response: { 200: VersionsOut } } }, async (req) => {
    requireIdentity(req, "admin");
    const versions = await store.history(req.params.namespace, req.params.key, req.query.limit);
    if (versions.length === 0) throw notFound(`${req.params.namespace}/${req.params.key} has no history`);
    return { namespace: req.params.namespace, key: req.params.key, versions };
  });

  app.get("/namespaces/:namespace/audit", { schema: { params: NsParams, querystring: Limit, response: { 200: AuditOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return { namespace: req.params.namespace, changes: await store.audit(req.params.namespace, req.query.limit) };
  });
}
