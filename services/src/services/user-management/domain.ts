/**
 * user-management's rules, without I/O: the public shape of a user, email normalisation, token
 * hashing, what a presented refresh token is worth, when an account is locked.
 */
import { createHash, randomBytes } from "node:crypto";
import { HttpError, unauthorized } from "../../kit";
import type { RefreshTokenRow, UserRow } from "./data";

export const publicUser = (u: UserRow) => ({
  id: u.id,
  email: u.email,
  role: u.role,
  displayName: u.display_name,
  createdAt: u.created_at.toISOString(),
});

export const normalizeEmail = (e: string) => e.trim().toLowerCase();

export const sha256 = (s: string) => createHash("sha256").update(s).digest();

/** A new opaque refresh token (256 bits); only its SHA-256 is stored. */
export const newRefreshToken = () => randomBytes(32).toString("base64url");

/**
 * What a presented refresh token allows. `reused`: it was already rotated, so it leaked (or the
 * legitimate client lost a race) and its whole family must be revoked.
 */
export type RefreshVerdict = { ok: true; token: RefreshTokenRow } | { ok: false; reused: boolean; error: HttpError };

export function judgeRefreshToken(t: RefreshTokenRow | undefined): RefreshVerdict {
  if (!t) return { ok: false, reused: false, error: new HttpError(401, "INVALID_REFRESH_TOKEN", "Invalid refresh token") };
  if (t.revoked_at) return { ok: false, reused: false, error: new HttpError(401, "INVALID_REFRESH_TOKEN", "Refresh token revoked") };
  if (t.used_at) return { ok: false, reused: true, error: new HttpError(401, "REFRESH_TOKEN_REUSED", "Refresh token already used; session revoked") };
  if (t.expired) return { ok: false, reused: false, error: new HttpError(401, "REFRESH_TOKEN_EXPIRED", "Refresh token expired") };
  return { ok: true, token: t };
}

export const unknownOrDisabledUser = () => unauthorized("Unknown or disabled user");

/** Failed logins per email in a fixed window: locked once the count reaches the maximum. */
export function lockoutRemainingMs(failures: number, windowTtlMs: number, maxFailures: number): number {
  return failures >= maxFailures ? Math.max(windowTtlMs, 1000) : 0;
}

export const accountLocked = (remainingMs: number) =>
  new HttpError(423, "ACCOUNT_LOCKED", "Too many failed logins; try again later", undefined, {
    "retry-after": String(Math.ceil(remainingMs / 1000)),
  });

export const invalidCredentials = () => new HttpError(401, "INVALID_CREDENTIALS", "Invalid email or password");
export const invalidApiKey = () => new HttpError(401, "INVALID_API_KEY", "Invalid API key");
