/** Request and response schemas of user-management's routes (TypeBox, validated by the kit). */
import { DisplayText, NoContent, ResponseObject, Type } from "../../kit";
import { API_KEY_SCOPES, type ApiKeyScope } from "../../kit/identity";
import { API_KEY_DEFAULT_EXPIRY_DAYS, API_KEY_DEFAULT_SCOPES, API_KEY_MAX_EXPIRY_DAYS } from "./api-keys";

export const Email = Type.String({ format: "email", minLength: 3, maxLength: 254 });
/** Display text (kit display-text.ts): no controls, line separators or direction overrides, something visible. */
export const DisplayName = DisplayText({ maxLength: 100 });
export const Uuid = Type.String({ format: "uuid" });
export const RefreshToken = Type.String({ minLength: 43, maxLength: 43, pattern: "^[A-Za-z0-9_-]+$" });
export const ApiKeyName = DisplayText({ maxLength: 100 });
const ApiKeyScopeIn = Type.Unsafe<ApiKeyScope>(Type.String({ enum: [...API_KEY_SCOPES] }));
export const NewApiKeyBody = Type.Object(
  {
    name: ApiKeyName,
    expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: API_KEY_MAX_EXPIRY_DAYS, default: API_KEY_DEFAULT_EXPIRY_DAYS })),
    scopes: Type.Optional(
      Type.Array(ApiKeyScopeIn, {
        minItems: 1,
        maxItems: API_KEY_SCOPES.length,
        uniqueItems: true,
        default: [...API_KEY_DEFAULT_SCOPES],
        description: "read: GET and HEAD; trade: reading and placing, cancelling and planning trades. No scope reaches payments, billing, API keys or credentials (a user session only)",
      }),
    ),
  },
  { additionalProperties: false },
);
/** Newest first; `before`: the last id of the previous page (its `nextBefore`). */
export const ApiKeyListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
  before: Type.Optional(Type.String({ format: "uuid" })),
});
export const UserOut = Type.Object({
  id: Type.String(),
  email: Type.String(),
  role: Type.String(),
  displayName: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});
/** New passwords: the configured minimum length, at most 128. */
export const NewPassword = (minLength: number) => Type.String({ minLength, maxLength: 128 });
export const AnyPassword = Type.String({ minLength: 1, maxLength: 128 });

/** Responses (documented in the OpenAPI description; unnamed fields are kept). */
export const SessionOut = ResponseObject({
  tokenType: Type.String({ description: "Bearer" }),
  accessToken: Type.String(),
  expiresIn: Type.Integer({ description: "seconds" }),
  refreshToken: Type.String(),
  refreshExpiresIn: Type.Integer({ description: "seconds" }),
  user: UserOut,
});
export const UserEnvelope = ResponseObject({ user: UserOut });
export const MeOut = ResponseObject({ user: UserOut, authMethod: Type.String(), scopes: Type.Optional(Type.Array(Type.String(), { description: "the API key's scopes (calls with an API key)" })) });
const NullableString = (description?: string) => Type.Union([Type.String(), Type.Null()], description ? { description } : {});
const ApiKeyFields = {
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  scopes: Type.Array(Type.String()),
  createdAt: Type.String(),
  expiresAt: NullableString("null: never (keys made before expiry existed)"),
};
export const ApiKeyCreated = ResponseObject({ ...ApiKeyFields, key: Type.String({ description: "shown once" }) });
export const ApiKeyList = ResponseObject({
  apiKeys: Type.Array(ResponseObject({ ...ApiKeyFields, lastUsedAt: NullableString(), revokedAt: NullableString() })),
  nextBefore: NullableString("the next page: GET /api-keys?before=<this>; null on the last page"),
});
export { NoContent };
