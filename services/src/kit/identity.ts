/**
 * The identity the api-gateway verified, as trusted headers. The gateway strips these headers from
 * client requests and sets them itself; services behind it read them with `identityOf`.
 * (Services are only reachable from the gateway and peers: network policies / internal network.)
 */
import type { FastifyRequest } from "fastify";
import { forbidden, unauthorized } from "./errors";

export const IDENTITY_HEADERS = {
  userId: "x-user-id",
  role: "x-user-role",
  /** "jwt" or "api-key" */
  authMethod: "x-auth-method",
  apiKeyId: "x-api-key-id",
  /** an API key's scopes, comma-separated (absent for a session) */
  apiKeyScopes: "x-api-key-scopes",
} as const;

export type Role = "trader" | "admin";
export const ROLES: readonly Role[] = ["trader", "admin"];

/**
 * What an API key may do, a closed set: `read` only GET and HEAD, `trade` everything a user's key
 * may do (keys made before scopes existed have both). The gateway enforces them on every request.
 */
export const API_KEY_SCOPES = ["read", "trade"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export function isApiKeyScope(s: unknown): s is ApiKeyScope {
  return (API_KEY_SCOPES as readonly unknown[]).includes(s);
}

/** Whether a key with these scopes may send a request with this method. */
export function scopesAllow(scopes: readonly ApiKeyScope[], method: string): boolean {
  return scopes.includes("trade") || (scopes.includes("read") && (method === "GET" || method === "HEAD"));
}

export interface Identity {
  userId: string;
  role: Role;
  authMethod: "jwt" | "api-key";
  apiKeyId?: string;
  /** An API key's scopes (absent for a session, which may do everything its role may). */
  scopes?: readonly ApiKeyScope[];
}

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The caller's identity, or undefined when the request carries none (or a malformed one). */
export function identityOf(request: FastifyRequest): Identity | undefined {
  const userId = request.headers[IDENTITY_HEADERS.userId];
  const role = request.headers[IDENTITY_HEADERS.role];
  if (typeof userId !== "string" || !uuidRe.test(userId)) return undefined;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) return undefined;
  const method = request.headers[IDENTITY_HEADERS.authMethod] === "api-key" ? "api-key" : "jwt";
  const apiKeyId = request.headers[IDENTITY_HEADERS.apiKeyId];
  const scopes = request.headers[IDENTITY_HEADERS.apiKeyScopes];
  const id: Identity = { userId, role: role as Role, authMethod: method, apiKeyId: typeof apiKeyId === "string" ? apiKeyId : undefined };
  if (method === "api-key") id.scopes = typeof scopes === "string" ? scopes.split(",").filter(isApiKeyScope) : [];
  return id;
}

/** The caller's identity or a 401; with `role`, a 403 unless the caller has it. */
export function requireIdentity(request: FastifyRequest, role?: Role): Identity {
  const id = identityOf(request);
  if (!id) throw unauthorized();
  if (role && id.role !== role) throw forbidden(`Requires role ${role}`);
  return id;
}
