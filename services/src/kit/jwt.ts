/**
 * Access tokens: HS256 JWTs signed with JWT_SECRET (issued by user-management, verified by the
 * api-gateway). Algorithms are pinned (no "none", no RS/HS confusion); exp, iat, iss, aud, sub are
 * required and checked.
 */
import { createSecretKey, randomUUID, type KeyObject } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { isCanonicalUserId, UUID_TEXT, type Role } from "./identity";

export const JWT_ISSUER = "ai-trading/user-management";
export const JWT_AUDIENCE = "ai-trading";
export const JWT_ALGORITHM = "HS256";
/** A session id as user-management makes it (randomUUID: lower case). */
const SESSION_ID_RE = new RegExp(`^${UUID_TEXT}$`);

export interface AccessClaims {
  userId: string;
  role: Role;
  /** Token id (jti). */
  tokenId: string;
  expiresAt: number;
  issuedAt: number;
  /**
   * The user's token epoch when the token was issued (claim `ep`, 0 when absent). Revoking a user's
   * tokens (logout everywhere, role change, disable) raises the stored epoch; the gateway refuses
   * tokens of an older epoch.
   */
  epoch: number;
  /**
   * The session (refresh-token family) the token was issued to (claim `sid`, a UUID in lower case).
   * Ending that session alone (its logout, or its family revoked when a rotated refresh token came
   * back) makes the gateway refuse the token. Absent from tokens issued before session 40: those
   * are refused only by the epoch, and live out their expiry otherwise.
   */
  sessionId?: string;
}

/** The HMAC key as a KeyObject, created once (jose then signs/verifies with node:crypto directly). */
export function jwtKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, "utf8"));
}

export async function signAccessToken(key: KeyObject | Uint8Array, sub: { userId: string; role: Role; epoch?: number; sessionId?: string }, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: sub.role, ep: sub.epoch ?? 0, ...(sub.sessionId === undefined ? {} : { sid: sub.sessionId }) })
    .setProtectedHeader({ alg: JWT_ALGORITHM, typ: "JWT" })
    .setSubject(sub.userId)
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID())
    .sign(key);
}

export class TokenError extends Error {
  constructor(
    message: string,
    readonly reason: "expired" | "invalid",
  ) {
    super(message);
  }
}

/** Each base64url character's 6-bit value by its char code, -1 for any other (`=`, `+`, `/` included). */
const BASE64URL_VALUE = (() => {
  const values = new Int8Array(128).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i;
  return values;
})();

/**
 * Whether `token` is three dot-separated segments each in the one spelling base64url has for its bytes:
 * what `Buffer.from(s, "base64url").toString("base64url")` gives back (no `=`, no `+` or `/`, a length
 * that is not 1 more than a multiple of 4, and a last character whose bits past the data are zero).
 * Node's decoder (and so jose's) ignores those bits, the padding and the other alphabet, so one signed
 * token had many spellings that verified, each a distinct key of a cache or deny list (red team 63).
 * No allocation: the gateway runs it before its token cache.
 */
export function isCanonicalJwt(token: string): boolean {
  let segments = 1;
  let start = 0;
  for (let i = 0; i <= token.length; i++) {
    const code = i < token.length ? token.charCodeAt(i) : 46; // the end closes the last segment as a dot would
    if (code === 46) {
      if (i < token.length && ++segments > 3) return false;
      const length = i - start;
      // 1 character past a multiple of 4 carries no byte; 2 (3) carry one (two) and 4 (2) unused low bits.
      const unusedBits = length % 4 === 2 ? 0x0f : length % 4 === 3 ? 0x03 : 0;
      if (length % 4 === 1 || (length > 0 && (BASE64URL_VALUE[token.charCodeAt(i - 1)] & unusedBits) !== 0)) return false;
      start = i + 1;
    } else if (code > 127 || BASE64URL_VALUE[code] < 0) return false;
  }
  return segments === 3;
}

/** Verifies the token's spelling (isCanonicalJwt), signature (HS256 only), exp, iat (not in the future), iss, aud, sub and role. */
export async function verifyAccessToken(key: KeyObject | Uint8Array, token: string, maxAgeSeconds: number): Promise<AccessClaims> {
  try {
    if (!isCanonicalJwt(token)) throw new TokenError("token is not in canonical base64url", "invalid");
    const { payload } = await jwtVerify(token, key, {
      algorithms: [JWT_ALGORITHM],
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      requiredClaims: ["exp", "iat", "sub", "jti"],
      maxTokenAge: maxAgeSeconds,
      clockTolerance: 5,
      typ: "JWT",
    });
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat !== "number" || payload.iat > now + 5) throw new TokenError("token issued in the future", "invalid");
    if (payload.role !== "trader" && payload.role !== "admin") throw new TokenError("token has no valid role", "invalid");
    if (typeof payload.sub !== "string") throw new TokenError("token has no subject", "invalid");
    // user-management signs the id as users.id prints it (lower case): a subject in any other
    // spelling was not issued as such, and would key the gateway's user-state cache and rate
    // limits apart from the user's own (a disable would not reach it).
    if (!isCanonicalUserId(payload.sub)) throw new TokenError("token subject is not a user id", "invalid");
    const epoch = payload.ep ?? 0;
    if (typeof epoch !== "number" || !Number.isSafeInteger(epoch) || epoch < 0) throw new TokenError("token has an invalid epoch", "invalid");
    // A session id names the gateway's revocation entry: one spelling only, as user-management signs it.
    const sid = payload.sid;
    if (sid !== undefined && (typeof sid !== "string" || !SESSION_ID_RE.test(sid))) throw new TokenError("token has an invalid session id", "invalid");
    return { userId: payload.sub, role: payload.role, tokenId: String(payload.jti), expiresAt: payload.exp!, issuedAt: payload.iat, epoch, ...(sid === undefined ? {} : { sessionId: sid }) };
  } catch (e) {
    if (e instanceof TokenError) throw e;
    if (e instanceof joseErrors.JWTExpired) throw new TokenError("token expired", "expired");
    throw new TokenError("invalid token", "invalid");
  }
}
/** Re-exported for tests that forge tokens. */
export { SignJWT } from "jose";
