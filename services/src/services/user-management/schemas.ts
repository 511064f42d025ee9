/** Request and response schemas of user-management's routes (TypeBox, validated by the kit). */
import { Type } from "../../kit";

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
