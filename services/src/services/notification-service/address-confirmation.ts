/**
 * Confirming an address before notices go to it: an e-mail address or a Telegram chat, the same way.
 * A new or changed address gets a 6-digit code sent to it; notices use the address once the code
 * comes back (POST /preferences/<channel>/verify). Before, whatever address a user typed received
 * the platform's notices at once: a typo or a stranger's mailbox mailed under the platform's name,
 * and any chat id, a stranger's included, got a user's fills and alerts from the platform's bot
 * (until session 38). Only the code's SHA-256 is stored (bound to the user and
 * the address), for CODE_TTL_MS, and MAX_CODE_TRIES wrong codes end it (a million codes are not
 * guessed five at a time). No I/O here: confirmation-data.ts (SQL), confirmation-routes.ts (HTTP).
 */
import { createHash, randomInt, timingSafeEqual } from "node:crypto";

/** The channels whose address is the user's word until confirmed (a webhook is the user's own endpoint, signed). */
export const CONFIRMABLE = ["email", "telegram"] as const;
export type Confirmable = (typeof CONFIRMABLE)[number];

export const CODE_TTL_MS = 24 * 3_600_000;
export const MAX_CODE_TRIES = 5;
/** Codes one user may be sent per hour and channel (a changed address or a resend). */
export const MAX_CODES_PER_HOUR = 5;
/**
 * Codes one address may be sent per hour, whoever asks. Limited per user alone, accounts (free to
 * make) naming a stranger's address or chat sent it five codes an hour each. Someone naming an
 * address with this many accounts can hold up its owner's code for the rest of the hour: the lesser harm.
 */
export const MAX_CODES_PER_ADDRESS_PER_HOUR = 5;

/**
 * The address as its far end knows it: an e-mail address in any case alike; a chat id as Telegram's
 * integer ("007" and "7" are one chat, and were two keys of the per-address limit).
 */
export const canonicalAddress = (channel: Confirmable, address: string): string => (channel === "email" ? address.toLowerCase() : BigInt(address).toString());

/** A user's saved addresses, each with whether its owner confirmed it (data.ts Preferences). */
export interface SavedAddresses { email: string | null; emailVerified: boolean; telegramChatId: string | null; telegramVerified: boolean }

/**
 * Whether `address` is the user's confirmed address on the channel now (the same mailbox or chat:
 * canonicalAddress). Checked again at send time: a delivery waits (quiet hours, the rate limit, a
 * retry) with the address it was queued for, and the user may have changed or removed that address
 * since, or (a chat queued before migration 0420) never confirmed it. Only Telegram was checked so;
 * e-mail queued before a change went to the address the user had left.
 */
export function isConfirmedAddress(saved: SavedAddresses, channel: Confirmable, address: string): boolean {
  const current = channel === "email" ? (saved.emailVerified ? saved.email : null) : saved.telegramVerified ? saved.telegramChatId : null;
  return current !== null && canonicalAddress(channel, current) === canonicalAddress(channel, address);
}

/** The address in a rate-limit key: hashed (no address in Dragonfly), its canonical form. */
export const addressKey = (channel: Confirmable, address: string): string => createHash("sha256").update(canonicalAddress(channel, address)).digest("hex");

export const newCode = (): string => String(randomInt(0, 1_000_000)).padStart(6, "0");

/** The stored form of a code: bound to its user and address, so a code for one confirms nothing else. */
export const codeHash = (channel: Confirmable, userId: string, address: string, code: string): Buffer =>
  createHash("sha256").update(`${userId}\n${canonicalAddress(channel, address)}\n${code}`).digest();

/** Compared in constant time (equal lengths: both are SHA-256). */
export const sameHash = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

/** How each channel names and words its confirmation. */
export const CONFIRMATION = {
  email: {
    field: "email", what: "e-mail address", name: "e-mail", unavailableCode: "EMAIL_UNAVAILABLE",
    subject: "Confirm your e-mail address for AI Trading notifications",
    ignore: "If you did not ask for notifications to this address, ignore this message: nothing is sent to it unless the code is entered.",
  },
  telegram: {
    field: "telegramChatId", what: "Telegram chat id", name: "Telegram", unavailableCode: "TELEGRAM_UNAVAILABLE",
    subject: "Confirm this chat for AI Trading notifications",
    ignore: "If you did not ask for notifications in this chat, ignore this message: no notice is sent here unless the code is entered.",
  },
} as const satisfies Record<Confirmable, { field: string; what: string; name: string; unavailableCode: string; subject: string; ignore: string }>;

export interface CodeMessage { dedupKey: string; subject: string; text: string }

/** The message carrying the code (the address is the one it confirms). */
export const codeMessage = (channel: Confirmable, code: string): CodeMessage => ({
  dedupKey: `${channel}-verification:${createHash("sha256").update(code).digest("hex").slice(0, 16)}`,
  subject: CONFIRMATION[channel].subject,
  text: `Your confirmation code is ${code}. Enter it in the platform's notification settings within 24 hours.\n\n${CONFIRMATION[channel].ignore}`,
});
