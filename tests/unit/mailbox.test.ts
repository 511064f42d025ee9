/** The kit's `email` format: ajv-formats' shape within the sizes SMTP delivers to. */
import { describe, expect, it } from "vitest";
import { isMailboxAddress } from "../../services/src/kit/mailbox";

describe("isMailboxAddress", () => {
  const label = (n: number) => "d".repeat(n);
  it("takes addresses at the limits", () => {
    for (const a of ["a@b.co", `${"a".repeat(64)}@example.test`, `x@${label(63)}.test`, "first.last+tag@sub.example.test"]) expect(isMailboxAddress(a), a).toBe(true);
  });
  it("refuses a local part over 64 octets, a label over 63, a domain over 255, and what is not an address", () => {
    const longDomain = Array.from({ length: 5 }, () => label(60)).join(".") + ".test"; // 309 characters
    for (const a of [`${"a".repeat(65)}@example.test`, `x@${label(64)}.test`, `x@${longDomain}`, "not-an-email", "a@", "@b.co", "a b@c.co"]) expect(isMailboxAddress(a), a).toBe(false);
  });
});
