/**
 * The platform's Idempotency-Key (order-management, payment-service, central-hub): 1-128 characters
 * of [A-Za-z0-9._:-], scoped per user. The same key with the same request answers the first
 * request's result again (200, `idempotent-replay: true`); with another request it is a 409 naming
 * the key. The request is compared by a hash of its canonical form (keys sorted, defaults applied
 * by the caller), so a retry that serialises the same body differently is still the same request.
 */
import { createHash } from "node:crypto";
import { HttpError } from "./errors";

const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The Idempotency-Key header when present, checked; null when absent or empty. */
export function idempotencyKeyOf(header: string | string[] | undefined): string | null {
  const key = typeof header === "string" && header.length > 0 ? header : null;
  if (key && !IDEMPOTENCY_KEY_RE.test(key)) throw new HttpError(400, "VALIDATION_ERROR", "Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]", "idempotency-key");
  return key;
}

/** JSON with object keys sorted at every level. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/** SHA-256 of the request's canonical JSON. */
export const requestHashOf = (request: unknown): string => createHash("sha256").update(canonicalJson(request)).digest("hex");

/** The key came back with another request. */
export const idempotencyKeyReused = (key: string) =>
  new HttpError(409, "IDEMPOTENCY_KEY_REUSED", `Idempotency-Key ${key} was used with a different request body; use a new key for a new request`, "idempotency-key");
