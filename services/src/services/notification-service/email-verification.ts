/**
 * Confirming an e-mail address before notices go to it. A new or changed address gets a 6-digit
 * code by e-mail; notices use the address once the code comes back (POST
 * /preferences/email/verify). Before, whatever address a user typed received the platform's notices
 * at once: a typo, or a stranger's address, mailed under the platform's name and sender reputation.
 * Only the code's SHA-256 is stored (bound to the user and the address), for CODE_TTL_MS, and
 * MAX_CODE_TRIES wrong codes end it (a million codes are not guessed five at a time).
 */
import { createHash, randomInt, timingSafeEqual } from "node:crypto";

export const CODE_TTL_MS = 24 * 3_600_000;
export const MAX_CODE_TRIES = 5;
/** Codes one user may be sent per hour (a changed address or a resend). */
export const MAX_CODES_PER_HOUR = 5;
/**
 * Codes one address may be sent per hour, whoever asks. Limited per user alone, accounts (free to
 * make) naming a stranger's address mailed it five codes an hour each. Someone naming an address
 * with this many accounts can hold up its owner's code for the rest of the hour: the lesser harm.
 */
export const MAX_CODES_PER_ADDRESS_PER_HOUR = 5;

/** The address in a rate-limit key: hashed (no address in Dragonfly), any case alike. */
export const addressKey = (email: string): string => createHash("sha256").update(email.toLowerCase()).digest("hex");

export const newCode = (): string => String(randomInt(0, 1_000_000)).padStart(6, "0");

/** The stored form of a code: bound to its user and address, so a code for one confirms nothing else. */
export const codeHash = (userId: string, email: string, code: string): Buffer => createHash("sha256").update(`${userId}\n${email.toLowerCase()}\n${code}`).digest();

export const sameHash = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

/** The e-mail carrying the code (the address is the one it confirms). */
export const codeMessage = (code: string) => ({
  dedupKey: `email-verification:${createHash("sha256").update(code).digest("hex").slice(0, 16)}`,
  subject: "Confirm your e-mail address for AI Trading notifications",
  text:
    `Your confirmation code is ${code}. Enter it in the platform's notification settings within 24 hours.\n\n` +
    "If you did not ask for notifications to this address, ignore this message: nothing is sent to it unless the code is entered.",
});

export type VerifyOutcome = "verified" | "wrong" | "expired" | "no_code";
