/**
 * Who is calling: `Authorization: Bearer <access JWT>` (HS256, JWT_SECRET, iss/aud/exp/iat checked)
 * or `x-api-key: atk_...`, then the user's current state (./user-states.ts): a disabled or deleted
 * account, a token of an older epoch or of a changed role is refused within a second of the change,
 * and so is a token of a session ended alone (claim `sid`: logout, refresh-token reuse;
 * ./revoked-sessions.ts). A token without `sid` (issued before session 40) lives out its expiry.
 *
 * A token in another base64url spelling of the same bytes (the last character's unused bits, padding,
 * `+/`) is a 401 and never a cache key (red team 63): the caches hold only tokens verifyAccessToken took,
 * which takes one spelling alone (kit isCanonicalJwt), so another spelling misses and is refused there.
 * Hot path: a verified token is kept (signature, claims) until it expires, so a repeated token costs
 * a map lookup instead of an HMAC and a JSON parse; a verified API key likewise, dropped when its
 * revocation is published and refused from its expiry on (an expired key is looked up again, and
 * user-management refuses it as it refuses a revoked one). Both caches are trusted only while the
 * revocation subscription is live.
 * `cached()` answers from these caches and the in-process user state alone, synchronously (no
 * promise per request); anything it cannot decide goes through `authenticate()`.
 * Both credentials at once are a 400 naming `x-api-key` (ambiguousCredentials): the token was used
 * and the key ignored, while a proxy or log in front may take the key as the caller.
 */
import type { KeyObject } from "node:crypto";
import type { Redis } from "ioredis";
import { HttpError, TokenError, unavailable, verifyAccessToken, type AccessClaims, type Identity, type PeerClient } from "../../kit";
import { apiKeyCacheKey, apiKeyExpired, hashApiKey, parseApiKey, parseApiKeyIdentity, type ApiKeyIdentity } from "../user-management/api-keys";
import { revocationReason } from "../user-management/user-state";
import type { GatewayLimits } from "./limits";
import type { UserStates } from "./user-states";

export type Auth = { identity?: Identity; error?: HttpError };

// The scheme is a case-insensitive token followed by one or more spaces (RFC 9110 §11.1, RFC 6750 §2.1:
// `"Bearer" 1*SP b64token`): `bearer <token>` and `Bearer  <token>` were a 401 until session 63.
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;
// The scheme right and the token one word (no white space, so no second scheme) holding a character
// base64url lacks: base64's padding `=` or its `+` and `/`, anything else. Told "must be 'Bearer <access
// token>'" until session 64, which sent a client checking its scheme, not its token's encoding.
const NOT_BASE64URL = /^Bearer +(?=\S*[^\sA-Za-z0-9_.-])\S+$/i;
const MAX_CACHED = 50_000;

const NOT_BASE64URL_MESSAGE = "The access token is not base64url (RFC 7515 section 2): no '=' padding, '-' and '_' where base64 has '+' and '/'";
const invalidKey = () => new HttpError(401, "INVALID_API_KEY", "Invalid API key");
const SESSION_ENDED = "session ended";
const revoked = (reason: string) => new HttpError(401, "CREDENTIALS_REVOKED", `Credentials no longer valid: ${reason}`);

type CredentialHeaders = { authorization?: string; "x-api-key"?: string | string[] };

/** A request carrying both a token and an API key: which caller it is cannot be told. A 400 naming the key's header. */
function ambiguousCredentials(headers: CredentialHeaders): Auth | undefined {
  if (headers.authorization === undefined || headers["x-api-key"] === undefined) return undefined;
  return { error: new HttpError(400, "AMBIGUOUS_CREDENTIALS", "Send either Authorization or X-Api-Key, not both", "x-api-key") };
}

export interface AuthenticatorDeps {
  key: KeyObject;
  maxTokenAgeS: number;
  redis: Redis;
  peers: PeerClient;
  states: UserStates;
  limits: GatewayLimits;
}

/**
 * The last token one client connection sent, with its verified claims (the fast lane keeps one a connection,
 * ./fast-lane/connections.ts): a client sends the same Authorization header on every request of a kept-alive
 * connection, and comparing it with the last one is cheaper than the pattern match, the token's slice and the
 * hash of its ~200 characters that the cache's lookup takes (session 61's perf profile of the gateway: ~2 % of
 * its CPU a request). Claims are the cache's, verified; every check of `cached` after the lookup still runs.
 */
export interface TokenMemo {
  authorization: string | undefined;
  claims: AccessClaims | undefined;
}

export class Authenticator {
  private readonly tokens = new Map<string, AccessClaims>();
  private readonly apiKeys = new Map<string, ApiKeyIdentity>();
  /** API key lookups under way, by key hash and client address (lookupOnce). */
  private readonly lookups = new Map<string, Promise<ApiKeyIdentity>>();
  /** API key revocations heard so far: a lookup that overlapped one does not fill the cache. */
  private apiKeyRevocations = 0;

  constructor(private readonly d: AuthenticatorDeps) {
    d.states.onApiKeyRevoked = (hashHex) => {
      this.apiKeyRevocations++;
      if (hashHex === "*") this.apiKeys.clear();
      else this.apiKeys.delete(hashHex);
    };
  }

  /**
   * What `authenticate()` would answer, when the caches alone can tell (a known token or API key of a
   * user whose current state is held in process); undefined when a lookup or verification is needed.
   * The same checks as the slow path: expiry, maximum age, the user's state, epoch and role.
   */
  cached(headers: CredentialHeaders, memo?: TokenMemo): Auth | undefined {
    const ambiguous = ambiguousCredentials(headers);
    if (ambiguous) return ambiguous;
    if (!this.d.states.subscribed) return undefined;
    const authorization = headers.authorization;
    if (authorization !== undefined) {
      let claims: AccessClaims | undefined;
      if (memo !== undefined && memo.authorization === authorization) claims = memo.claims;
      else {
        // No spelling check here (the hot path): the cache holds only tokens verifyAccessToken took, each
        // canonical, so another spelling of one misses and goes to authenticate(), which refuses it.
        const m = BEARER.exec(authorization);
        claims = m ? this.tokens.get(m[1]) : undefined;
        if (memo !== undefined && claims !== undefined) [memo.authorization, memo.claims] = [authorization, claims];
      }
      const nowS = Date.now() / 1000;
      if (!claims || claims.expiresAt <= nowS || claims.issuedAt + this.d.maxTokenAgeS <= nowS) return undefined;
      const state = this.d.states.peek(claims.userId);
      if (!state) return undefined;
      const reason = revocationReason(state, { role: claims.role, epoch: claims.epoch });
      if (reason) return { error: revoked(reason) };
      const ended = claims.sessionId === undefined ? false : this.d.states.sessions.peek(claims.sessionId);
      if (ended === undefined) return undefined;
      if (ended) return { error: revoked(SESSION_ENDED) };
      // Read again before the process's copies run out: a busy caller stays decidable here.
      this.d.states.refreshAhead(claims.userId);
      if (claims.sessionId !== undefined) this.d.states.sessions.refreshAhead(claims.sessionId);
      return { identity: { userId: claims.userId, role: claims.role, authMethod: "jwt" } };
    }
    const apiKey = headers["x-api-key"];
    if (apiKey === undefined) return {};
    if (typeof apiKey !== "string" || !parseApiKey(apiKey)) return undefined;
    const id = this.apiKeys.get(hashApiKey(apiKey).toString("hex"));
    const state = id && !apiKeyExpired(id) && this.d.states.peek(id.userId);
    if (!id || !state) return undefined;
    const reason = revocationReason(state, { role: state.role });
    if (reason) return { error: revoked(reason) };
    this.d.states.refreshAhead(id.userId);
    return { identity: apiKeyIdentity(id, state.role) };
  }

  /** The verified identity, an error to answer with, or neither (anonymous). Never throws. `ip`: the client's address bucket (kit addressBucketOf), where failed keys are counted. */
  async authenticate(headers: CredentialHeaders, ip: string, requestId: string, budgetMs: number): Promise<Auth> {
    const ambiguous = ambiguousCredentials(headers);
    if (ambiguous) return ambiguous;
    try {
      if (headers.authorization !== undefined) return { identity: await this.fromToken(headers.authorization, requestId, budgetMs) };
      const apiKey = headers["x-api-key"];
      if (apiKey !== undefined) return { identity: await this.fromApiKey(typeof apiKey === "string" ? apiKey : "", ip, requestId, budgetMs) };
      return {};
    } catch (e) {
      if (e instanceof TokenError)
        return { error: new HttpError(401, e.reason === "expired" ? "TOKEN_EXPIRED" : "INVALID_TOKEN", e.reason === "expired" ? "Access token expired" : "Invalid access token") };
      if (e instanceof HttpError) return { error: e };
      return { error: new HttpError(503, "AUTH_UNAVAILABLE", "Authentication unavailable") };
    }
  }

  private async fromToken(authorization: string, requestId: string, budgetMs: number): Promise<Identity> {
    const m = BEARER.exec(authorization);
    if (!m) throw new HttpError(401, "INVALID_TOKEN", NOT_BASE64URL.test(authorization) ? NOT_BASE64URL_MESSAGE : "Authorization must be 'Bearer <access token>'");
    const token = m[1];
    // Another spelling of a cached token misses (the cache holds what verifyAccessToken took, canonical alone):
    // verifyAccessToken refuses it (kit isCanonicalJwt) before it is stored.
    const nowS = Date.now() / 1000;
    let claims = this.d.states.subscribed ? this.tokens.get(token) : undefined;
    if (!claims || claims.expiresAt <= nowS || claims.issuedAt + this.d.maxTokenAgeS <= nowS) {
      claims = await verifyAccessToken(this.d.key, token, this.d.maxTokenAgeS);
      if (this.tokens.size >= MAX_CACHED) this.tokens.clear();
      this.tokens.set(token, claims);
    }
    const state = await this.d.states.get(claims.userId, requestId, budgetMs);
    const reason = revocationReason(state, { role: claims.role, epoch: claims.epoch });
    if (reason) throw revoked(reason);
    if (claims.sessionId !== undefined && (await this.d.states.sessions.isRevoked(claims.sessionId))) throw revoked(SESSION_ENDED);
    return { userId: claims.userId, role: claims.role, authMethod: "jwt" };
  }

  private async fromApiKey(apiKey: string, ip: string, requestId: string, budgetMs: number): Promise<Identity> {
    if (!parseApiKey(apiKey)) {
      await this.d.limits.admitKeyAttempt(ip); // counted and kept: a failure
      throw invalidKey();
    }
    const hash = hashApiKey(apiKey);
    const hex = hash.toString("hex");
    let id = this.d.states.subscribed ? this.apiKeys.get(hex) : undefined;
    if (id && apiKeyExpired(id)) {
      this.apiKeys.delete(hex);
      id = undefined;
    }
    if (!id) {
      // A revocation heard while the lookup was out may be this key's, announced before the answer
      // came back: caching that answer would keep the revoked key working in this process for good.
      const revocationsBefore = this.apiKeyRevocations;
      id = await this.lookupOnce(hash, apiKey, ip, requestId, budgetMs);
      if (this.d.states.subscribed && this.apiKeyRevocations === revocationsBefore) {
        if (this.apiKeys.size >= MAX_CACHED) this.apiKeys.clear();
        this.apiKeys.set(hex, id);
      }
    }
    const state = await this.d.states.get(id.userId, requestId, budgetMs);
    const reason = revocationReason(state, { role: state.role });
    if (reason) throw revoked(reason);
    return apiKeyIdentity(id, state.role);
  }

  /**
   * One lookup of a key from one address at a time in this process: a client sending its new key 20
   * times at once costs one verification and one counted attempt (each counted alone, the 20 would
   * pass API_KEY_MAX_FAILURES together and be refused as guesses).
   */
  private lookupOnce(hash: Buffer, apiKey: string, ip: string, requestId: string, budgetMs: number): Promise<ApiKeyIdentity> {
    const flight = `${hash.toString("hex")} ${ip}`;
    let lookup = this.lookups.get(flight);
    if (!lookup) {
      lookup = this.lookupApiKey(hash, apiKey, ip, requestId, budgetMs).finally(() => this.lookups.delete(flight));
      this.lookups.set(flight, lookup);
    }
    return lookup;
  }

  private async lookupApiKey(hash: Buffer, apiKey: string, ip: string, requestId: string, budgetMs: number): Promise<ApiKeyIdentity> {
    const cached = await this.d.redis.get(apiKeyCacheKey(hash)).catch(() => null);
    const fromCache = cached ? parseCachedIdentity(cached) : undefined;
    if (fromCache && !apiKeyExpired(fromCache)) return fromCache;
    // Counted before the verification (concurrent guesses cannot all pass the limit); only a failure stays counted.
    const giveBack = await this.d.limits.admitKeyAttempt(ip);
    let failed = false;
    try {
      const r = await this.d.peers.call<unknown>("user-management", "/internal/api-keys/verify", {
        body: { key: apiKey },
        requestId,
        timeoutMs: Math.min(5_000, budgetMs),
        // A POST that only asks (its last-used stamp aside, it changes nothing): cut PEER_CLOSE_GRACE_MS
        // into the gateway's close (kit peers cutOnClose), a 503 SHUTTING_DOWN; the attempt given back.
        cutOnClose: true,
      });
      failed = r.status === 401;
      if (failed) throw invalidKey();
      const verified = r.status === 200 ? parseApiKeyIdentity(r.body) : undefined;
      if (!verified) throw unavailable("AUTH_UNAVAILABLE", "API key verification unavailable", 1);
      // Live by PostgreSQL's clock, expired by this one: refused as user-management would a moment later.
      if (apiKeyExpired(verified)) throw invalidKey();
      return verified;
    } finally {
      if (!failed) await giveBack();
    }
  }
}

/** An API key acts with the user's current role and the key's scopes. */
function apiKeyIdentity(id: ApiKeyIdentity, role: Identity["role"]): Identity {
  return { userId: id.userId, role, authMethod: "api-key", apiKeyId: id.apiKeyId, scopes: id.scopes };
}

/** A Dragonfly cache entry, or undefined when it is not one (unparsable, or of an older version): looked up again. */
function parseCachedIdentity(text: string): ApiKeyIdentity | undefined {
  try {
    return parseApiKeyIdentity(JSON.parse(text));
  } catch {
    return undefined;
  }
}
