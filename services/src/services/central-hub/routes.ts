/**
 * central-hub's HTTP routes (behind the gateway at /api/hub, admins only; services call it directly):
 *   PUT    /instances/:service/:id      heartbeat { version, address, health, metadata?, ttlMs? } -> 201 first, then 200
 *   DELETE /instances/:service/:id      deregister (graceful shutdown)
 *   GET    /instances[?service=]        live instances (also GET /instances/:service)
 *   GET    /fleet                       per service: instances, versions, health counts; catalog services without any
 *   POST   /locks/:name/acquire         { owner, ttlMs } + optional Idempotency-Key -> 200 { token, fencingToken, expiresAt }
 *                                      | 409 LOCKED { holder } | 409 IDEMPOTENCY_KEY_USED (that acquisition was released);
 *                                      the same key and owner while that acquisition holds the lock -> its same 200
 *   POST   /locks/:name/renew           { token, ttlMs } -> 200 | 409 (not the holder) | 404 (no lock / expired)
 *   POST   /locks/:name/release         { token } -> 204 | 409 | 404
 *   GET    /locks/:name                 holder (owner, acquiredAt, ttlRemainingMs) or 404
 */
import type { FastifyRequest } from "fastify";
import { catalog } from "../../catalog";
import { conflict, DisplayText, forbidden, HttpError, idempotencyKeyOf, identityOf, NoContent, notFound, PRINTABLE_TEXT_PATTERN, printableTextPattern, ResponseObject, Type, type App } from "../../kit";
import { fleetView, mayUseHub } from "./domain";
import type { LockManager } from "./locks";
import type { InstanceRegistry } from "./registry";

const Name = Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" });
// At most 100 characters: Fastify's router answers 414 to a longer path parameter before the schema
// could name the field.
const InstanceId = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$" });
const LockName = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$" });
const Token = Type.String({ pattern: "^[0-9a-f]{32}$" });
const TtlMs = (max: number) => Type.Integer({ minimum: 100, maximum: max });

// Responses (OpenAPI; unnamed fields are kept).
const InstanceOut = ResponseObject({ service: Type.String(), id: Type.String(), version: Type.String(), address: Type.String(), health: Type.String(), registeredAt: Type.String(), lastHeartbeat: Type.String(), ttlMs: Type.Number(), expiresAt: Type.String() });
const Instances = ResponseObject({ instances: Type.Array(InstanceOut) });
const Fleet = ResponseObject({
  generatedAt: Type.String(),
  instances: Type.Number(),
  services: Type.Array(ResponseObject({ service: Type.String(), inCatalog: Type.Boolean(), instances: Type.Number(), versions: Type.Record(Type.String(), Type.Number()), health: Type.Record(Type.String(), Type.Number()) })),
});
const LockHeld = ResponseObject({ name: Type.String(), owner: Type.String(), token: Type.String(), fencingToken: Type.Number(), expiresAt: Type.String() });
const LockOut = ResponseObject({ name: Type.String(), owner: Type.String(), acquiredAt: Type.String(), ttlRemainingMs: Type.Number() });
const Locked = ResponseObject({
  error: ResponseObject({ code: Type.String(), message: Type.String(), requestId: Type.String() }),
  holder: Type.Optional(Type.Unknown({ description: "LOCKED: who holds the lock (null only for a lock value this version cannot read)" })),
});

export interface HubLimits {
  /** TTL of a heartbeat that names none. */
  instanceTtlMs: number;
  maxInstanceTtlMs: number;
  maxLockTtlMs: number;
}

function guardAdmin(req: FastifyRequest) {
  if (!mayUseHub(identityOf(req))) throw forbidden("Requires role admin");
}

export function registerRoutes(app: App, deps: { registry: InstanceRegistry; locks: LockManager; limits: HubLimits }): void {
  const { registry, locks, limits } = deps;
  const InstanceParams = Type.Object({ service: Name, id: InstanceId });
  const Heartbeat = Type.Object(
    {
      // Printable (kit display-text.ts): /fleet, the logs and an admin's terminal show them.
      version: DisplayText({ maxLength: 64 }),
      address: DisplayText({ maxLength: 256 }),
      health: Type.Union([Type.Literal("healthy"), Type.Literal("degraded"), Type.Literal("unhealthy")]),
      // propertyNames: a Record's key schema only names the keys its value schema applies to (TypeBox
      // writes it as patternProperties), so its maxLength bounded nothing and a key of any length passed.
      metadata: Type.Optional(Type.Record(Type.String(), DisplayText({ minLength: 0, maxLength: 256, visible: false }), { maxProperties: 32, propertyNames: { maxLength: 64, pattern: PRINTABLE_TEXT_PATTERN } })),
      ttlMs: Type.Optional(TtlMs(limits.maxInstanceTtlMs)),
    },
    { additionalProperties: false },
  );

  app.put("/instances/:service/:id", { schema: { params: InstanceParams, body: Heartbeat, response: { 200: InstanceOut, 201: InstanceOut } } }, async (req, reply) => {
    guardAdmin(req);
    const { ttlMs, ...body } = req.body;
    const { instance, registered } = await registry.heartbeat(req.params.service, req.params.id, body, ttlMs ?? limits.instanceTtlMs);
    return reply.status(registered ? 201 : 200).send(instance);
  });

  app.delete("/instances/:service/:id", { schema: { params: InstanceParams, response: { 204: NoContent } } }, async (req, reply) => {
    guardAdmin(req);
    if (!(await registry.deregister(req.params.service, req.params.id))) throw notFound(`${req.params.service}/${req.params.id} is not registered`);
    return reply.status(204).send();
  });

  app.get("/instances", { schema: { querystring: Type.Object({ service: Type.Optional(Name) }, { additionalProperties: false }), response: { 200: Instances } } }, async (req) => {
    guardAdmin(req);
    return { instances: await registry.list(req.query.service) };
  });
  app.get("/instances/:service", { schema: { params: Type.Object({ service: Name }), response: { 200: Instances } } }, async (req) => {
    guardAdmin(req);
    return { instances: await registry.list(req.params.service) };
  });

  app.get("/fleet", { schema: { response: { 200: Fleet } } }, async (req) => {
    guardAdmin(req);
    return fleetView(await registry.list(), catalog.map((s) => s.name));
  });

  const LockParams = Type.Object({ name: LockName });
  app.post(
    "/locks/:name/acquire",
    {
      schema: {
        params: LockParams,
        body: Type.Object({ owner: Type.String({ minLength: 1, maxLength: 128, pattern: printableTextPattern("|", "\"|\"") }), ttlMs: TtlMs(limits.maxLockTtlMs) }, { additionalProperties: false }),
        response: { 200: LockHeld, 409: Locked },
      },
    },
    async (req, reply) => {
      guardAdmin(req);
      const key = idempotencyKeyOf(req.headers["idempotency-key"]);
      const r = await locks.acquire(req.params.name, req.body.owner, req.body.ttlMs, key);
      if (r.outcome === "key-used") {
        // Only the holder of that acquisition's token could release it, so its answer was received:
        // this is a late duplicate, and acquiring anew would hold the lock for a TTL nobody uses.
        throw new HttpError(409, "IDEMPOTENCY_KEY_USED", `the acquisition of lock ${req.params.name} made with this Idempotency-Key was released; acquire with a new key`, "idempotency-key");
      }
      if (r.outcome === "locked") {
        return reply.status(409).send({
          error: { code: "LOCKED", message: `lock ${req.params.name} is held${r.holder ? ` by ${r.holder.owner}` : ""}`, requestId: String(req.id) },
          holder: r.holder,
        });
      }
      return { name: req.params.name, owner: req.body.owner, token: r.token, fencingToken: r.fencingToken, expiresAt: r.expiresAt };
    },
  );

  app.post(
    "/locks/:name/renew",
    { schema: { params: LockParams, body: Type.Object({ token: Token, ttlMs: TtlMs(limits.maxLockTtlMs) }, { additionalProperties: false }), response: { 200: ResponseObject({ name: Type.String(), expiresAt: Type.String() }) } } },
    async (req) => {
      guardAdmin(req);
      const { outcome: r, expiresAt } = await locks.renew(req.params.name, req.body.token, req.body.ttlMs);
      if (r === "missing") throw notFound(`lock ${req.params.name} is not held (expired or released)`);
      if (r === "held-by-another") throw conflict(`lock ${req.params.name} is held by someone else`, "token");
      return { name: req.params.name, expiresAt };
    },
  );

  app.post(
    "/locks/:name/release",
    { schema: { params: LockParams, body: Type.Object({ token: Token }, { additionalProperties: false }), response: { 204: NoContent } } },
    async (req, reply) => {
      guardAdmin(req);
      const r = await locks.release(req.params.name, req.body.token);
      if (r === "missing") throw notFound(`lock ${req.params.name} is not held (expired or released)`);
      if (r === "held-by-another") throw conflict(`lock ${req.params.name} is held by someone else`, "token");
      return reply.status(204).send();
    },
  );

  app.get("/locks/:name", { schema: { params: LockParams, response: { 200: LockOut } } }, async (req) => {
    guardAdmin(req);
    const info = await locks.info(req.params.name);
    if (!info) throw notFound(`lock ${req.params.name} is not held`);
    return info;
  });
}
