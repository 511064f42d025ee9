/** Request and response schemas of user-management's routes (TypeBox, validated by the kit). */
import { NoContent, ResponseObject, Type } from "../../kit";

export const Email = Type.String({ format: "email", minLength: 3, maxLength: 254 });
export const DisplayName = Type.String({ minLength: 1, maxLength: 100, pattern: "^[^\\u0000-\\u001f\\u007f]*$" });
export const Uuid = Type.String({ format: "uuid" });
export const RefreshToken = Type.String({ minLength: 43, maxLength: 43, pattern: "^[A-Za-z0-9_-]+$" });
export const ApiKeyName = Type.String({ minLength: 1, maxLength: 100, pattern: "^[^\\u0000-\\u001f\\u007f]*$" });
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
export const MeOut = ResponseObject({ user: UserOut, authMethod: Type.String() });
export const ApiKeyCreated = ResponseObject({ id: Type.String(), name: Type.String(), prefix: Type.String(), key: Type.String({ description: "shown once" }), createdAt: Type.String() });
export const ApiKeyList = ResponseObject({
  apiKeys: Type.Array(ResponseObject({ id: Type.String(), name: Type.String(), prefix: Type.String(), createdAt: Type.String(), lastUsedAt: Type.Union([Type.String(), Type.Null()]), revokedAt: Type.Union([Type.String(), Type.Null()]) })),
});
export { NoContent };
