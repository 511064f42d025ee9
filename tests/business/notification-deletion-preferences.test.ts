/**
 * `PUT /preferences` against its account's deletion, on the real service (tests/helpers/notification-rig.ts):
 * the preferences are saved (the account's lock, kit lockAccountForWrite), then a changed address's
 * code is stored under the lock again and sent. A deletion committed between the two (forced: it runs
 * in the service's first step after the save, the code counter's INCR, never timed) was answered as if
 * nothing was saved (403 "no code is sent"); the answer now says the preferences were saved just
 * before the deletion, and no code is stored or sent. A deletion before the save: nothing saved, and
 * the answer says that.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { useNotificationRig } from "../helpers/notification-rig";
import { ensureAccount } from "../helpers/accounts";
import { deleteUser } from "../../services/src/services/user-management/data";

const rig = useNotificationRig();

async function account(): Promise<string> {
  const id = randomUUID();
  await ensureAccount(rig.accounts, id);
  return id;
}
const saved = async (userId: string) =>
  (await rig.accounts.query<{ email: string; coded: boolean }>("SELECT email, email_code_hash IS NOT NULL AS coded FROM nt_preferences WHERE user_id = $1", [userId])).rows;

describe("PUT /preferences and the account's deletion: the 403 says what was saved", () => {
  it("the deletion committed after the save, before the code: 403 ACCOUNT_DELETED saying the preferences were saved; no code stored or mailed", async () => {
    const id = await account();
    const address = `deleted-after-save-${rig.run}@example.test`;
    const redis = rig.svc.app.redis;
    const incr = redis.incr.bind(redis);
    const spy = vi.spyOn(redis, "incr").mockImplementationOnce(async (key: Parameters<typeof incr>[0]) => {
      expect(await deleteUser(rig.accounts, id)).toBe(true);
      return incr(key);
    });
    try {
      const r = await rig.api("PUT", "/preferences", id, { email: address, telegramChatId: null });
      expect([r.status, r.body.error.code, r.body.error.field]).toEqual([403, "ACCOUNT_DELETED", "userId"]);
      expect(r.body.error.message).toContain("these preferences were saved just before the deletion");
      expect(r.body.error.message).toContain("no confirmation code is sent");
    } finally {
      spy.mockRestore();
    }
    expect(await saved(id)).toEqual([{ email: address, coded: false }]);
    expect(rig.mails.filter((m) => m.to.includes(address))).toEqual([]);
  });

  it("the deletion committed before the save: 403 ACCOUNT_DELETED saying nothing was saved", async () => {
    const id = await account();
    expect(await deleteUser(rig.accounts, id)).toBe(true);
    const r = await rig.api("PUT", "/preferences", id, { email: `deleted-before-${rig.run}@example.test`, telegramChatId: null });
    expect([r.status, r.body.error.code, r.body.error.field]).toEqual([403, "ACCOUNT_DELETED", "userId"]);
    expect(r.body.error.message).toContain("nothing was saved");
    expect(await saved(id)).toEqual([]);
  });
});
