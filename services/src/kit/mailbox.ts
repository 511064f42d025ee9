/**
 * The `email` format: ajv-formats' shape of an address, within the sizes SMTP delivers to (RFC 5321
 * 4.5.3.1: a local part of at most 64 octets, a domain of at most 255 and labels of at most 63,
 * RFC 1035). ajv-formats checks the shape only, so an account or a notification address no mail
 * server accepts was stored (a 65-character local part, a 64-character label).
 */
import type { FormatDefinition } from "ajv";
import { fullFormats } from "ajv-formats/dist/formats";

const EMAIL_SHAPE = fullFormats.email as RegExp;

export function isMailboxAddress(s: string): boolean {
  if (!EMAIL_SHAPE.test(s)) return false;
  const at = s.lastIndexOf("@");
  const domain = s.slice(at + 1);
  return at <= 64 && domain.length <= 255 && domain.split(".").every((label) => label.length <= 63);
}

export const mailboxFormat: FormatDefinition<string> = { type: "string", validate: isMailboxAddress };
