/**
 * One signed token, one spelling (kit jwt.ts isCanonicalJwt, red team 63): base64url's last character
 * carries low bits no byte uses, and Node's decoder (jose's) ignores them, `=` padding and base64's `+/`,
 * so several strings verified as the same token, each a distinct key of the gateway's token cache.
 * isCanonicalJwt is judged here against the definition, Buffer's round trip, over every length and tail,
 * and verifyAccessToken refuses every other spelling of a token it accepts.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isCanonicalJwt, jwtKey, signAccessToken, TokenError, verifyAccessToken } from "../../services/src/kit";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The definition: what Node's decoder and encoder give back, unchanged. */
const canonical = (segment: string) => Buffer.from(segment, "base64url").toString("base64url") === segment;

/** `token` with its segment `index` (0 header, 1 payload, 2 signature) rewritten by `spell`. */
const respelt = (token: string, index: number, spell: (s: string) => string) =>
  token
    .split(".")
    .map((s, i) => (i === index ? spell(s) : s))
    .join(".");
/** The same bytes with the last character's unused low bits set (undefined when it has none). */
const withTailBits = (s: string): string | undefined => {
  const unused = s.length % 4 === 2 ? 0x0f : s.length % 4 === 3 ? 0x03 : 0;
  if (unused === 0) return undefined;
  return s.slice(0, -1) + ALPHABET[ALPHABET.indexOf(s.at(-1)!) | unused];
};

describe("isCanonicalJwt", () => {
  it("agrees with Buffer's round trip on every segment length 0-9 and every last character", () => {
    for (let length = 0; length < 10; length++)
      for (const last of ALPHABET + "=+/.*é") {
        const segment = length === 0 ? "" : randomBytes(8).toString("base64url").slice(0, length - 1) + last;
        if (segment.length !== length) continue;
        const expected = !/[^A-Za-z0-9_-]/.test(segment) && canonical(segment);
        for (const at of [0, 1, 2]) {
          const parts = ["eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiJ4In0", "c2ln"];
          parts[at] = segment;
          expect(isCanonicalJwt(parts.join(".")), `${JSON.stringify(segment)} as segment ${at}`).toBe(expected);
        }
      }
  });

  it("agrees with the round trip on random texts over base64url, base64 and padding", () => {
    const letters = ALPHABET + "+/=";
    for (let n = 0; n < 20_000; n++) {
      const parts = [0, 1, 2].map(() => Array.from({ length: Math.floor(Math.random() * 12) }, () => letters[Math.floor(Math.random() * letters.length)]).join(""));
      const expected = parts.every((s) => !/[^A-Za-z0-9_-]/.test(s) && canonical(s));
      expect(isCanonicalJwt(parts.join(".")), parts.join(".")).toBe(expected);
    }
  });

  it("wants three segments", () => {
    for (const token of ["", "a", "AA.AA", "AA.AA.AA.AA", "AA.AA.AA.", ".AA.AA.AA", "AA..AA.AA"]) expect(isCanonicalJwt(token), token).toBe(false);
    expect(isCanonicalJwt("AA.AA.AA")).toBe(true);
    expect(isCanonicalJwt("AA.AA.")).toBe(true); // an empty signature is spelt one way (jose refuses it unsigned)
  });
});

describe("verifyAccessToken refuses another spelling of a token it accepts", () => {
  it("tail bits, padding and base64's +/ in the header, the payload or the signature are each an invalid token", async () => {
    const key = jwtKey("x".repeat(40));
    // The signature (32 bytes, 43 characters) always ends in a character with 2 unused bits; the header
    // and payload have some when their length is not a multiple of 4, padding likewise.
    const token = await signAccessToken(key, { userId: randomUUID(), role: "trader", sessionId: randomUUID() }, 300);
    await expect(verifyAccessToken(key, token, 3_600)).resolves.toMatchObject({ role: "trader" });
    const spellings: Array<[string, string]> = [];
    for (const [index, name] of ["header", "payload", "signature"].entries()) {
      const segment = token.split(".")[index];
      const tail = withTailBits(segment);
      if (tail !== undefined) spellings.push([`${name} with tail bits`, respelt(token, index, () => tail)]);
      if (segment.length % 4 !== 0) spellings.push([`${name} padded`, respelt(token, index, (s) => s + "=".repeat(4 - (s.length % 4)))]);
      if (/[-_]/.test(segment)) spellings.push([`${name} in base64's alphabet`, respelt(token, index, (s) => s.replace(/-/g, "+").replace(/_/g, "/"))]);
    }
    expect(spellings.some(([label]) => label === "signature with tail bits")).toBe(true);
    for (const [label, spelt] of spellings) {
      // Each decodes to the same bytes as the token's own segment: only the spelling differs.
      for (const [a, b] of spelt.split(".").map((s, i) => [s, token.split(".")[i]])) expect(Buffer.from(a, "base64url").equals(Buffer.from(b, "base64url")), label).toBe(true);
      const refused = await verifyAccessToken(key, spelt, 3_600).catch((e: unknown) => e);
      expect(refused, label).toBeInstanceOf(TokenError);
      expect((refused as TokenError).reason, label).toBe("invalid");
    }
  });
});
