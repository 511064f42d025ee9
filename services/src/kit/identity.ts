/**
 * The identity the api-gateway verified, as trusted headers. The gateway strips these headers from
 * client requests and sets them itself; services behind it read them with `identityOf`.
 * (Services are only reachable from the gateway and peers: network policies / internal network.)
 */
import { isIP } from "node:net";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { IDENTITY_HEADERS } from "../catalog";
import { forbidden, HttpError, unauthorized } from "./errors";

/** The header names live in the catalog (catalog/edge.ts), which the policy pack reads too. */
export { IDENTITY_HEADERS };

export type Role = "trader" | "admin";
export const ROLES: readonly Role[] = ["trader", "admin"];

/**
 * What an API key may do, a closed set: `read` GET and HEAD, `trade` reading and the trading writes
 * the gateway lists (api-gateway/key-scopes.ts; keys made before scopes existed have both). No scope
 * reaches payments, billing, keys or credentials: those need a user session. The gateway enforces them.
 */
export const API_KEY_SCOPES = ["read", "trade"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export function isApiKeyScope(s: unknown): s is ApiKeyScope {
  return (API_KEY_SCOPES as readonly unknown[]).includes(s);
}

/**
 * How the caller of a request signed in, as `x-auth-method` says: `jwt` a user session and `api-key`
 * an API key (the gateway sets either, from the credential it verified), `service` a peer service
 * acting for a user on its own (ai-orchestrator placing a strategy's orders: `peerIdentityHeaders`),
 * no session nor key of theirs at all. A request carrying a user id without one of these has no
 * identity (401 naming the header): before, it was taken for a session (`jwt`), so a peer's call was
 * recorded in audit rows (kill switch changes, refund issue closes) as a session that never existed.
 */
export const AUTH_METHODS = ["jwt", "api-key", "service"] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface Identity {
  userId: string;
  role: Role;
  authMethod: AuthMethod;
  apiKeyId?: string;
  /** An API key's scopes (absent for a session, which may do everything its role may). */
  scopes?: readonly ApiKeyScope[];
}

/** A UUID in its canonical text form, lower case, unanchored: the one copy every UUID pattern derives from. */
export const UUID_TEXT = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/**
 * A user id's one spelling: a UUID in lower case, as PostgreSQL's uuid type prints `users.id` and so
 * as user-management issues it (token `sub`, API-key lookups, every response). Most tables keyed by
 * user (om_positions, te_positions, advisory locks, Dragonfly keys...) hold it as text, where
 * `ABC…` and `abc…` are two keys: every id entering a service goes through `canonicalUserId`.
 */
export const CANONICAL_USER_ID_RE = new RegExp(`^${UUID_TEXT}$`);
/** A UUID in its canonical text form in any case (as PostgreSQL reads it): the kit's one UUID pattern. */
export const ANY_CASE_UUID_RE = new RegExp(CANONICAL_USER_ID_RE.source, "i");

/**
 * The canonical spelling of a user id: a UUID in any case, lower-cased (its hex digits name the same
 * id whatever their case, RFC 9562, so this never maps two users to one, nor one to two); undefined
 * for anything else. Ids from peers (identity headers, Kafka messages) are canonicalised with it;
 * ids a client sends are refused unless already canonical (`UserIdSchema`, `isCanonicalUserId`).
 */
export function canonicalUserId(raw: unknown): string | undefined {
  return typeof raw === "string" && ANY_CASE_UUID_RE.test(raw) ? raw.toLowerCase() : undefined;
}

/**
 * The partition key of a Kafka message keyed by user: the canonical id, so every message of one user
 * lands on one partition, in the order it was produced, whatever spelling the producer holds
 * (consumers canonicalise a message's user id, trading/infra/topicSchemas.ts, but the partition is
 * chosen from the key's bytes). An id that is no UUID is kept as spelled: the topic contracts take
 * any id. Every producer of a user-keyed topic builds its key with this.
 */
export function userPartitionKey(userId: string): string {
  return canonicalUserId(userId) ?? userId;
}

/** Whether `raw` is a user id as spelled canonically (what a client must send). */
export function isCanonicalUserId(raw: unknown): raw is string {
  return typeof raw === "string" && CANONICAL_USER_ID_RE.test(raw);
}

/** A user id in a request schema (route param, query, body): canonical only, else 400 naming it. */
export const UserIdSchema = Type.String({ pattern: CANONICAL_USER_ID_RE.source, description: "a user id: a UUID in lower case" });

/**
 * The caller's identity, or undefined when the request carries none (or a malformed one). The user
 * id is canonicalised: the gateway forwards the verified (canonical) id, but an internal peer acting
 * for a user (ai-orchestrator) sets these headers itself, and its spelling must reach the user's own
 * positions, locks, halts and orders, never a second identity.
 */
export function identityOf(request: FastifyRequest): Identity | undefined {
  const userId = canonicalUserId(request.headers[IDENTITY_HEADERS.userId]);
  const role = request.headers[IDENTITY_HEADERS.role];
  if (userId === undefined) return undefined;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) return undefined;
  const method = authMethodOf(request);
  if (method === undefined) return undefined;
  const apiKeyId = request.headers[IDENTITY_HEADERS.apiKeyId];
  const scopes = request.headers[IDENTITY_HEADERS.apiKeyScopes];
  const id: Identity = { userId, role: role as Role, authMethod: method, apiKeyId: method === "api-key" && typeof apiKeyId === "string" ? apiKeyId : undefined };
  if (method === "api-key") id.scopes = typeof scopes === "string" ? scopes.split(",").filter(isApiKeyScope) : [];
  return id;
}

function authMethodOf(request: FastifyRequest): AuthMethod | undefined {
  const raw = request.headers[IDENTITY_HEADERS.authMethod];
  return (AUTH_METHODS as readonly unknown[]).includes(raw) ? (raw as AuthMethod) : undefined;
}

/**
 * The identity headers of a peer service's call for the user `userId` (role `role`), made on its own
 * (no request of theirs in hand): recorded as `service`, never as their session.
 */
export function peerIdentityHeaders(userId: string, role: Role): Record<string, string> {
  return { [IDENTITY_HEADERS.userId]: userId, [IDENTITY_HEADERS.role]: role, [IDENTITY_HEADERS.authMethod]: "service" };
}

/** The caller's identity or a 401 (naming `x-auth-method` when a user id came without a known one); with `role`, a 403 unless the caller has it. */
export function requireIdentity(request: FastifyRequest, role?: Role): Identity {
  const id = identityOf(request);
  if (!id && request.headers[IDENTITY_HEADERS.userId] !== undefined && authMethodOf(request) === undefined)
    throw new HttpError(401, "UNAUTHORIZED", `${IDENTITY_HEADERS.authMethod} must be one of ${AUTH_METHODS.join(", ")} with a user id`, IDENTITY_HEADERS.authMethod);
  if (!id) throw unauthorized();
  if (role && id.role !== role) throw forbidden(`Requires role ${role}`);
  return id;
}

/**
 * The client's address as the gateway determined it (its trusted proxies considered): the gateway
 * sends it as the only X-Forwarded-For entry, replacing whatever the client sent, as it sets the
 * identity headers. A service reached without the gateway (a peer, a test) has its peer address.
 */
export function clientAddressOf(request: FastifyRequest): string {
  const forwarded = request.headers["x-forwarded-for"];
  return typeof forwarded === "string" && isIP(forwarded) !== 0 ? forwarded : request.ip;
}
