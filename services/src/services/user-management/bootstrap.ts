/**
 * The first admin: at start, when no active admin exists, BOOTSTRAP_ADMIN_EMAIL with
 * BOOTSTRAP_ADMIN_PASSWORD is created as one. An account already registered with that address is
 * promoted (and re-enabled) only when its password is BOOTSTRAP_ADMIN_PASSWORD. Registration is
 * open to anyone, and the stack sets no bootstrap admin, so the operator names one after the
 * platform is live: promoting whoever had registered the address made a stranger the admin, with a
 * password of the stranger's choosing (the operator's did not even log in).
 */
import type { UserManagementContext } from "./config";
import { findUserByEmail, hasActiveAdmin, insertAdmin, promoteToAdmin } from "./data";
import { normalizeEmail } from "./domain";
import { hashPassword, verifyPassword } from "./passwords";
import { publishUserState, userStateOf } from "./user-state";

export async function bootstrapAdmin(ctx: UserManagementContext): Promise<void> {
  const { BOOTSTRAP_ADMIN_EMAIL: rawEmail, BOOTSTRAP_ADMIN_PASSWORD: password } = ctx.config;
  if (!rawEmail || !password) return;
  const { pg } = ctx.app;
  if (await hasActiveAdmin(pg)) return;
  const email = normalizeEmail(rawEmail);
  const created = await insertAdmin(pg, email, await hashPassword(password));
  if (created) {
    ctx.log.warn({ userId: created.id }, "bootstrap admin created (BOOTSTRAP_ADMIN_EMAIL)");
    return;
  }
  const existing = await findUserByEmail(pg, email);
  if (!existing) return; // deleted since the insert: the next start creates it
  if (!(await verifyPassword(password, existing.password_hash))) {
    ctx.log.error(
      { userId: existing.id },
      "BOOTSTRAP_ADMIN_EMAIL names an account registered with another password than BOOTSTRAP_ADMIN_PASSWORD: not promoted (anyone may register an address); name another address, or give that account this password first",
    );
    return;
  }
  const promoted = await promoteToAdmin(pg, existing.id, existing.password_hash);
  if (!promoted) return; // its password changed meanwhile: judged again at the next start
  // The gateways may hold it as a trader: its new role (and epoch) reaches them like an admin's change.
  await publishUserState(ctx.app.redis, promoted.id, userStateOf(promoted)).catch((err: Error) =>
    ctx.log.warn({ err: { message: err.message }, userId: promoted.id }, "bootstrap admin's new role not propagated; gateways learn it when their cached state expires"),
  );
  ctx.log.warn({ userId: promoted.id }, "bootstrap admin promoted (BOOTSTRAP_ADMIN_EMAIL, an existing account holding BOOTSTRAP_ADMIN_PASSWORD)");
}
