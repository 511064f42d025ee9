/**
 * How a caller signed in (`x-auth-method`, kit identity.ts): `jwt` (a session) and `api-key` as the
 * gateway sets them, `service` a peer acting for a user on its own (ai-orchestrator's calls). Before,
 * a call carrying a user id without the header, or with any other value, was taken for a session
 * (`jwt`): a peer's direct call was recorded in audit rows as a session that never existed. Now it has
 * no identity, and requireIdentity's 401 names the header.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { HttpError, identityOf, peerIdentityHeaders, requireIdentity } from "../../services/src/kit";

const requestWith = (headers: Record<string, string>) => ({ headers }) as Parameters<typeof identityOf>[0];
const user = randomUUID();
const as = (extra: Record<string, string>) => requestWith({ "x-user-id": user, "x-user-role": "admin", ...extra });
const refusal = (r: Parameters<typeof identityOf>[0]) => {
  try {
    requireIdentity(r);
  } catch (err) {
    return { status: (err as HttpError).statusCode, code: (err as HttpError).code, field: (err as HttpError).field };
  }
  return undefined;
};

describe("x-auth-method", () => {
  it("jwt, api-key (with its scopes) and service are taken as said", () => {
    expect(identityOf(as({ "x-auth-method": "jwt", "x-api-key-id": "k", "x-api-key-scopes": "read" }))).toEqual({ userId: user, role: "admin", authMethod: "jwt", apiKeyId: undefined });
    expect(identityOf(as({ "x-auth-method": "api-key", "x-api-key-id": "k", "x-api-key-scopes": "read,nope" }))).toEqual({ userId: user, role: "admin", authMethod: "api-key", apiKeyId: "k", scopes: ["read"] });
    expect(identityOf(as({ "x-auth-method": "service", "x-api-key-scopes": "read,trade" }))).toEqual({ userId: user, role: "admin", authMethod: "service", apiKeyId: undefined });
  });

  it("missing or unknown with a user id: no identity, a 401 naming the header (never taken for a session)", () => {
    for (const method of [undefined, "", "JWT", "session", "api_key", "jwt,api-key"]) {
      const r = as(method === undefined ? {} : { "x-auth-method": method });
      expect(identityOf(r), String(method)).toBeUndefined();
      expect(refusal(r), String(method)).toEqual({ status: 401, code: "UNAUTHORIZED", field: "x-auth-method" });
    }
    // No user id at all: the plain 401.
    expect(refusal(requestWith({ "x-auth-method": "jwt" }))).toEqual({ status: 401, code: "UNAUTHORIZED", field: undefined });
  });

  it("a peer acting for a user sends peerIdentityHeaders: recorded as `service`", () => {
    const headers = peerIdentityHeaders(user, "trader");
    expect(headers).toEqual({ "x-user-id": user, "x-user-role": "trader", "x-auth-method": "service" });
    expect(requireIdentity(requestWith(headers), "trader")).toMatchObject({ userId: user, authMethod: "service" });
  });
});
