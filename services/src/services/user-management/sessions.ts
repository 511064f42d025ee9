/**
 * Sessions: a login issues an access token (HS256, short-lived) and a refresh token; a refresh
 * rotates the refresh token inside its family, and a rotated token that comes back revokes the
 * family.
 */
import type { KeyObject } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import { type HttpError, signAccessToken, type PostgresClient, type Queryable } from "../../kit";
import type { Role } from "../../kit/identity";
import { insertRefreshToken, lockRefreshToken, lockUserOfRefreshToken, markRefreshTokenUsed, revokeFamilyOnReuse, type UserRow } from "./data";
import { judgeRefreshToken, newRefreshToken, sha256, unknownOrDisabledUser } from "./domain";

export interface TokenSettings {
  key: KeyObject;
  accessTtlS: number;
  refreshTtlS: number;
}

export type TokenPair = Awaited<ReturnType<typeof issueTokens>>;

/**
 * A new session of `user` as read (its role and token epoch); throws `ended()` when the account's
 * sessions were ended (epoch raised, or disabled) since it was read.
 */
export async function issueTokens(db: Queryable, s: TokenSettings, user: { id: string; role: Role; token_epoch: number }, familyId: string, ended: () => HttpError = unknownOrDisabledUser) {
  const refreshToken = newRefreshToken();
  if (!(await insertRefreshToken(db, user.id, user.token_epoch, familyId, sha256(refreshToken), s.refreshTtlS))) throw ended();
  // The family id as `sid`: ending this session alone (logout, reuse) ends its access tokens too.
  const accessToken = await signAccessToken(s.key, { userId: user.id, role: user.role, epoch: user.token_epoch, sessionId: familyId }, s.accessTtlS);
  return { tokenType: "Bearer", accessToken, expiresIn: s.accessTtlS, refreshToken, refreshExpiresIn: s.refreshTtlS };
}

/**
 * Uses up `refreshToken` and returns a new pair, or throws the 401 that says why not. A reused token
 * revokes its family, and `familyRevoked` then tells the gateways (after COMMIT), so the access tokens
 * already issued to that session (the thief's too) are refused at once, not at their expiry.
 */
export async function rotateRefreshToken(
  pg: PostgresClient,
  s: TokenSettings,
  refreshToken: string,
  log: FastifyBaseLogger,
  familyRevoked: (familyId: string) => Promise<void>,
): Promise<{ tokens: TokenPair; user: UserRow }> {
  const outcome = await pg.transaction(async (c) => {
    const hash = sha256(refreshToken);
    const owner = await lockUserOfRefreshToken(c, hash); // first: the lock order of logout-all and disable
    const t = await lockRefreshToken(c, hash);
    const verdict = judgeRefreshToken(t);
    if (!verdict.ok) {
      if (verdict.reused && t) {
        await revokeFamilyOnReuse(c, t.family_id);
        log.warn({ userId: t.user_id, familyId: t.family_id }, "refresh token reuse detected: session family revoked");
      }
      return { error: verdict.error, revokedFamily: verdict.reused ? t?.family_id : undefined };
    }
    const token = verdict.token;
    const user = owner?.id === token.user_id && owner.disabled_at === null ? owner : undefined;
    if (!user) return { error: unknownOrDisabledUser() };
    await markRefreshTokenUsed(c, token.id);
    return { tokens: await issueTokens(c, s, user, token.family_id), user };
  });
  if ("error" in outcome) {
    // After COMMIT, so a family revocation sticks; told to the gateways before the client hears the 401.
    if (outcome.revokedFamily) await familyRevoked(outcome.revokedFamily);
    throw outcome.error;
  }
  return outcome;
}
