/**
 * central-hub: service registry with TTL heartbeats, a fleet view, and locks for singleton jobs.
 *
 * Routes (behind the gateway at /api/hub; services call it directly):
 *   PUT    /instances/:service/:id      heartbeat { version, address, health, metadata?, ttlMs? } -> 201 first, then 200
 *   DELETE /instances/:service/:id      deregister (graceful shutdown)
 *   GET    /instances[?service=]        live instances
 *   GET    /fleet                       per service: instances, versions, health counts; catalog services without any
 *   POST   /locks/:name/acquire         { owner, ttlMs } -> 200 { token, fencingToken, expiresAt } | 409 { holder }
 *   POST   /locks/:name/renew           { token, ttlMs } -> 200 | 409 (not the holder) | 404 (no lock / expired)
 *   POST   /locks/:name/release         { token } -> 204 | 409 | 404
 *   GET    /locks/:name                 holder (owner, acquiredAt, ttlRemainingMs) or 404
 * Writes that come through the gateway (an identity is present) need the admin role; peers
 * calling directly carry no identity and are trusted by network policy.
 */
import type { FastifyRequest } from "fastify";
import { catalog } from "../../catalog";
import { defineService, Type, identityOf, forbidden, notFound, conflict, HttpError, type ServiceContext } from "../../kit";
import { InstanceRegistry, type Instance } from "./registry";
import { LockManager } from "./locks";

const Name = Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" });
const InstanceId = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$" });
const LockName = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$" });
const Token = Type.String({ pattern: "^[0-9a-f]{32}$" });

function guardWrite(req: FastifyRequest) {
  const id = identityOf(req);
  if (id && id.role !== "admin") throw forbidden("Requires role admin");
}

type HubConfig = { HUB_INSTANCE_TTL_MS: number; HUB_MAX_TTL_MS: number; HUB_LOCK_MAX_TTL_MS: number };

export default defineService({
  name: "central-hub",
  config: {
    HUB_INSTANCE_TTL_MS: Type.Integer({ default: 15_000, minimum: 100, description: "TTL of a heartbeat without ttlMs" }),
    HUB_MAX_TTL_MS: Type.Integer({ default: 300_000, minimum: 100 }),
    HUB_LOCK_MAX_TTL_MS: Type.Integer({ default: 3_600_000, minimum: 100 }),
  },
  register(ctx: ServiceContext<HubConfig>) {
    const { app, config } = ctx;
    const redis = ctx.datastores.dragonfly.redis;
    const registry = new InstanceRegistry(redis);
    const locks = new LockManager(redis);
    const TtlMs = (max: number) => Type.Integer({ minimum: 100, maximum: max });

    app.put(
      "/instances/:service/:id",
      {
        schema: {
          params: Type.Object({ service: Name, id: InstanceId }),
          body: Type.Object(
            {
              version: Type.String({ minLength: 1, maxLength: 64 }),
              address: Type.String({ minLength: 1, maxLength: 256 }),
              health: Type.Union([Type.Literal("healthy"), Type.Literal("degraded"), Type.Literal("unhealthy")]),
              metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }), { maxProperties: 32 })),
              ttlMs: Type.Optional(TtlMs(config.HUB_MAX_TTL_MS)),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req, reply) => {
        guardWrite(req);
        const { ttlMs, ...body } = req.body;
        const { instance, registered } = await registry.heartbeat(req.params.service, req.params.id, body, ttlMs ?? config.HUB_INSTANCE_TTL_MS);
        return reply.status(registered ? 201 : 200).send(instance);
      },
    );

    app.delete("/instances/:service/:id", { schema: { params: Type.Object({ service: Name, id: InstanceId }) } }, async (req, reply) => {
      guardWrite(req);
      if (!(await registry.deregister(req.params.service, req.params.id))) throw notFound(`${req.params.service}/${req.params.id} is not registered`);
      return reply.status(204).send();
    });

    app.get(
      "/instances",
      { schema: { querystring: Type.Object({ service: Type.Optional(Name) }, { additionalProperties: false }) } },
      async (req) => ({ instances: await registry.list(req.query.service) }),
    );
    app.get("/instances/:service", { schema: { params: Type.Object({ service: Name }) } }, async (req) => ({
      instances: await registry.list(req.params.service),
    }));

    app.get("/fleet", async () => {
      const all = await registry.list();
      const by = new Map<string, Instance[]>();
      for (const i of all) by.set(i.service, [...(by.get(i.service) ?? []), i]);
      const services = [...new Set([...catalog.map((s) => s.name), ...by.keys()])].sort().map((name) => {
        const inst = by.get(name) ?? [];
        const versions: Record<string, number> = {};
        const health = { healthy: 0, degraded: 0, unhealthy: 0 };
        for (const i of inst) {
          versions[i.version] = (versions[i.version] ?? 0) + 1;
          health[i.health]++;
        }
        return { service: name, inCatalog: catalog.some((s) => s.name === name), instances: inst.length, versions, health };
      });
      return { generatedAt: new Date().toISOString(), instances: all.length, services };
    });

    app.post(
      "/locks/:name/acquire",
      {
        schema: {
          params: Type.Object({ name: LockName }),
          body: Type.Object({ owner: Type.String({ minLength: 1, maxLength: 128, pattern: "^[^|]+$" }), ttlMs: TtlMs(config.HUB_LOCK_MAX_TTL_MS) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        guardWrite(req);
        const r = await locks.acquire(req.params.name, req.body.owner, req.body.ttlMs);
        if (!r.acquired) {
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
      {
        schema: {
          params: Type.Object({ name: LockName }),
          body: Type.Object({ token: Token, ttlMs: TtlMs(config.HUB_LOCK_MAX_TTL_MS) }, { additionalProperties: false }),
        },
      },
      async (req) => {
        guardWrite(req);
        const r = await locks.renew(req.params.name, req.body.token, req.body.ttlMs);
        if (r === -1) throw notFound(`lock ${req.params.name} is not held (expired or released)`);
        if (r === 0) throw conflict(`lock ${req.params.name} is held by someone else`, "token");
        return { name: req.params.name, expiresAt: new Date(Date.now() + req.body.ttlMs).toISOString() };
      },
    );

    app.post(
      "/locks/:name/release",
      { schema: { params: Type.Object({ name: LockName }), body: Type.Object({ token: Token }, { additionalProperties: false }) } },
      async (req, reply) => {
        guardWrite(req);
        const r = await locks.release(req.params.name, req.body.token);
        if (r === -1) throw notFound(`lock ${req.params.name} is not held (expired or released)`);
        if (r === 0) throw new HttpError(409, "CONFLICT", `lock ${req.params.name} is held by someone else`, "token");
        return reply.status(204).send();
      },
    );

    app.get("/locks/:name", { schema: { params: Type.Object({ name: LockName }) } }, async (req) => {
      const info = await locks.info(req.params.name);
      if (!info) throw notFound(`lock ${req.params.name} is not held`);
      return info;
    });
  },
});
