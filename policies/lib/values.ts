/**
 * Pure helpers for reading resource properties as the policy engine hands them over.
 *
 * During `pulumi preview` a value that depends on another resource's output is "unknown": the engine
 * represents it by a sentinel string and wraps `props` in a proxy that throws when such a value is
 * read. Rules call `unwrap()` once and then treat unknown values explicitly (`isUnknown`), so one
 * unknown password does not turn the whole check into "can't run during preview".
 */

/** The engine's sentinels for unknown values (see @pulumi/policy proxy.ts). */
const UNKNOWN_SENTINELS = new Set([
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", // boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421", // number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", // string
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", // array
    "030794c1-ac77-496b-92df-f27374a8bd58", // asset
    "e48ece36-62e2-4504-bad9-02848725956a", // archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff", // object
]);

/** The sentinel tests use to stand for "not known during preview" (a string value). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const PROXY_TARGET = "__getSpecialProxyTarget";

export function isUnknown(value: unknown): boolean {
    return typeof value === "string" && UNKNOWN_SENTINELS.has(value);
}

/** Returns the plain object behind the engine's unknown-checking proxy (or the value itself). */
export function unwrap<T = any>(value: T): T {
    if (value !== null && typeof value === "object") {
        const target = (value as any)[PROXY_TARGET];
        if (target !== undefined && target !== true) {
            return target as T;
        }
    }
    return value;
}

export function isRecord(value: unknown): value is Record<string, any> {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** An array property (unknown or missing gives []). */
export function arr<T = any>(value: unknown): T[] {
    return Array.isArray(value) ? (value as T[]) : [];
}

/** A string property; unknown or non-string gives undefined. */
export function str(value: unknown): string | undefined {
    return typeof value === "string" && !isUnknown(value) ? value : undefined;
}

/** A number property (numeric strings accepted); unknown gives undefined. */
export function num(value: unknown): number | undefined {
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value === "string" && !isUnknown(value) && value.trim() !== "" && Number.isFinite(Number(value))) {
        return Number(value);
    }
    return undefined;
}

/** Visits every known string in a value, with its JSON-ish path. */
export function walkStrings(value: unknown, visit: (s: string, path: string) => void, path = ""): void {
    if (typeof value === "string") {
        if (!isUnknown(value)) visit(value, path);
        return;
    }
    if (Array.isArray(value)) {
        value.forEach((v, i) => walkStrings(v, visit, `${path}[${i}]`));
        return;
    }
    if (isRecord(value)) {
        for (const [k, v] of Object.entries(value)) {
            walkStrings(v, visit, path ? `${path}.${k}` : k);
        }
    }
}

/** Decodes a base64 string when it round-trips as printable UTF-8, else undefined. */
export function decodeBase64(value: string): string | undefined {
    const trimmed = value.trim();
    if (trimmed.length < 4 || trimmed.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
        return undefined;
    }
    const decoded = Buffer.from(trimmed, "base64").toString("utf8");
    if (decoded.includes("\uFFFD") || /[\x00-\x08\x0E-\x1F]/.test(decoded)) return undefined;
    return decoded;
}
