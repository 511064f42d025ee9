/**
 * Reading resource properties as the policy engine hands them over, on @pulumi/policy's public
 * contract only.
 *
 * During `pulumi preview` a value computed from another resource's output is not known yet. The
 * engine hands policies a property bag whose read of such a value throws; a throw that escapes a
 * policy makes the engine report the whole policy as "can't run during preview". Rules therefore
 * copy the bag once with `plain()`, which turns every read that throws into the UNKNOWN marker, and
 * then treat unknown values explicitly: one unknown password does not switch a whole check off.
 * (Reading a property of the deserialized bag has no other way to throw.)
 */

/** Our marker for "not known during preview" in a `plain()` copy. */
export const UNKNOWN: unique symbol = Symbol("unknown during preview");
export type Unknown = typeof UNKNOWN;

export function isUnknown(value: unknown): value is Unknown {
    return value === UNKNOWN;
}

/** Is the value, or anything inside it, unknown during preview? */
export function hasUnknown(value: unknown): boolean {
    if (isUnknown(value)) return true;
    if (Array.isArray(value)) return value.some(hasUnknown);
    return isRecord(value) && Object.values(value).some(hasUnknown);
}

function read(from: any, key: string | number): unknown {
    try {
        return from[key];
    } catch {
        return UNKNOWN;
    }
}

/**
 * One field of a property bag (the engine's or a `plain()` copy) as `plain(bag)[key]` would hold it
 * before its own copy (unknown gives UNKNOWN), for a rule that reads a part of a bag:
 * `plain(readField(bag, "metadata"))` equals `plain(bag).metadata` without walking the rest. A bag
 * that is no plain object (UNKNOWN, a string, an array) has no fields: undefined.
 */
export function readField(bag: unknown, key: string): unknown {
    if (bag === null || typeof bag !== "object" || Array.isArray(bag)) return undefined;
    const proto = Object.getPrototypeOf(bag);
    if (proto !== Object.prototype && proto !== null) return undefined;
    return Object.keys(bag).includes(key) ? read(bag, key) : undefined;
}

/**
 * A plain deep copy of a property bag (or of any value read from it): arrays and plain objects are
 * copied, unknown values become UNKNOWN, anything else (strings, numbers, assets) is kept.
 */
export function plain<T = any>(value: T): T {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) {
        const out: unknown[] = [];
        const n = value.length;
        for (let i = 0; i < n; i++) out.push(plain(read(value, i)));
        return out as T;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) out[key] = plain(read(value, key));
    return out as T;
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
    return typeof value === "string" ? value : undefined;
}

/** A number property (numeric strings accepted); unknown gives undefined. */
export function num(value: unknown): number | undefined {
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
    return undefined;
}

/** Visits every known string in a value, with its JSON-ish path. */
export function walkStrings(value: unknown, visit: (s: string, path: string) => void, path = ""): void {
    if (typeof value === "string") {
        visit(value, path);
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

/**
 * Is a limit-like quantity (a resource limit, an emptyDir sizeLimit) set to something? A number or a
 * quantity string ("512Mi", "0.5"); zero in any spelling ("0", "0.0", "0Mi", "0m"), empty or missing
 * is none. A value unknown during preview is taken as set.
 */
export function positiveQuantity(v: unknown): boolean {
    if (isUnknown(v)) return true;
    const n = num(v);
    if (n !== undefined) return n > 0;
    const s = str(v)?.trim();
    if (s === undefined || s === "") return false;
    const magnitude = Number.parseFloat(s);
    return !(Number.isFinite(magnitude) && magnitude <= 0);
}
