/**
 * user-management's admin routes (behind the gateway at /api/users/admin/...; admin role and a user
 * session required). Each change is committed in PostgreSQL, then propagated to the gateways
 * (user-state.ts) before the answer: a disabled or deleted account, or one whose role changed,
 * loses its access tokens and API keys within a second.
 *   PUT    /admin/users/:id/role      { role }
 *   POST   /admin/users/:id/disable   sessions revoked, tokens and keys refused
 *   POST   /admin/users/:id/enable
 *   DELETE /admin/users/:id           the account, its sessions and API keys; its tombstone
 *                                     (deleted_users) makes order-management cancel its open orders
 * Each change is made only while its caller is still an active admin, one at a time
 * (data.asActingAdmin): two admins demoting or deleting each other at once left no admin.
 */
import type { FastifyRequest } from "fastify";
import { forbidden, HttpError, requireIdentity, Type, UserIdSchema, type App, type Queryable } from "../../kit";
import * as data from "./data";
import * as keyData from "./api-key-data";
import type { ApiKeyCache } from "./dragonfly";
import { publicUser } from "./domain";
import { NoContent, UserEnvelope } from "./schemas";

export interface AdminDeps {
  apiKeyCache: ApiKeyCache;
  propagateUserState(userId: string, row: data.UserRow | undefined): Promise<void>;
}

// Canonical only: the self-checks below compare it with the caller's id as text (an admin's own id
// in upper case would pass them, PostgreSQL's uuid matching it whatever its case).
const IdParams = Type.Object({ id: UserIdSchema });

function requireAdminSession(req: FastifyRequest) {
  const who = requireIdentity(req, "admin");
  if (who.authMethod !== "jwt") throw new HttpError(403, "FORBIDDEN", "Account administration needs a user session");
  return who;
}

export function registerAdminRoutes(app: App, deps: AdminDeps): void {
  const noSuchUser = () => new HttpError(404, "NOT_FOUND", "No such user", "id");
  /** The change, made while the caller is still an admin (data.asActingAdmin: no two admins remove each other at once). */
  async function asAdmin<T>(adminId: string, change: (c: Queryable) => Promise<T>): Promise<T> {
    const done = await data.asActingAdmin(app.pg, adminId, change);
    if (done === "not-admin") throw forbidden("Requires role admin (your account changed meanwhile)");
    return done;
  }

  app.put(
    "/admin/users/:id/role",
    { schema: { params: IdParams, body: Type.Object({ role: Type.Union([Type.Literal("trader"), Type.Literal("admin")]) }, { additionalProperties: false }), response: { 200: UserEnvelope } } },
    async (req) => {
      const who = requireAdminSession(req);
      // As for disable and delete: an admin who demoted themselves could leave no admin at all.
      if (req.params.id === who.userId && req.body.role !== "admin") throw new HttpError(409, "CONFLICT", "An admin cannot demote their own account", "id");
      const user = await asAdmin(who.userId, (c) => data.setUserRole(c, req.params.id, req.body.role));
      if (!user) throw noSuchUser();
      await deps.apiKeyCache.drop(await keyData.apiKeyHashesOf(app.pg, req.params.id));
      await deps.propagateUserState(user.id, user);
      req.log.warn({ by: who.userId, userId: req.params.id, role: req.body.role }, "role changed");
      return { user: publicUser(user) };
    },
  );

  for (const action of ["disable", "enable"] as const)
    app.post(`/admin/users/:id/${action}`, { schema: { params: IdParams, response: { 200: UserEnvelope } } }, async (req) => {
      const who = requireAdminSession(req);
      if (action === "disable" && req.params.id === who.userId) throw new HttpError(409, "CONFLICT", "An admin cannot disable their own account", "id");
      const user = await asAdmin(who.userId, (c) => data.setUserDisabled(c, req.params.id, action === "disable"));
      if (!user) throw noSuchUser();
      await deps.apiKeyCache.drop(await keyData.apiKeyHashesOf(app.pg, user.id));
      await deps.propagateUserState(user.id, user);
      req.log.warn({ by: who.userId, userId: user.id }, `account ${action}d`);
      return { user: { ...publicUser(user), disabled: user.disabled_at !== null } };
    });

  app.delete("/admin/users/:id", { schema: { params: IdParams, response: { 204: NoContent } } }, async (req, reply) => {
    const who = requireAdminSession(req);
    if (req.params.id === who.userId) throw new HttpError(409, "CONFLICT", "An admin cannot delete their own account", "id");
    const hashes = await keyData.apiKeyHashesOf(app.pg, req.params.id);
    if (!(await asAdmin(who.userId, (c) => data.deleteUser(c, req.params.id)))) {
      // Also the retry of a deletion whose propagation failed (503 "retry the request"): the gateways
      // still hold the user as active until they are told, so they are told again.
      await deps.propagateUserState(req.params.id, undefined);
      throw noSuchUser();
    }
    await deps.apiKeyCache.drop(hashes);
    await deps.propagateUserState(req.params.id, undefined);
    req.log.warn({ by: who.userId, userId: req.params.id }, "account deleted");
    return reply.status(204).send();
  });
}
