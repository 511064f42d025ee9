/**
 * Confirming the e-mail address (email-verification.ts): sending a code, and taking it back.
 *   POST /preferences/email/code      a fresh code to the caller's unconfirmed address
 *   POST /preferences/email/verify    {code}
 * A code is sent after it is stored, without the request waiting for the SMTP relay (a stalled relay
 * would hold it up to 40 s, past the gateway's timeout): a send that fails is logged and the user
 * asks for another. At most MAX_CODES_PER_HOUR codes per user an hour, and
 * MAX_CODES_PER_ADDRESS_PER_HOUR to one address (whichever users ask).
 */
import type { Logger } from "pino";
import { badRequest, conflict, HttpError, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import * as data from "./data";
import { addressKey, CODE_TTL_MS, codeHash, codeMessage, MAX_CODE_TRIES, MAX_CODES_PER_ADDRESS_PER_HOUR, MAX_CODES_PER_HOUR, newCode, sameHash } from "./email-verification";

/** Sends one message to an address (the e-mail channel). */
export type CodeSender = (to: string, m: ReturnType<typeof codeMessage>) => Promise<void>;

/** What became of a code: `sent` (handed to the relay), `unavailable` (e-mail is off), `rate_limited`. */
export type CodeOutcome = "sent" | "unavailable" | "rate_limited";

const VerifyBody = Type.Object({ code: Type.String({ pattern: "^[0-9]{6}$", description: "the 6 digits sent to the address" }) }, { additionalProperties: false });
const VerifiedOut = ResponseObject({ emailVerified: Type.Boolean() });
const CodeOut = ResponseObject({ emailVerification: Type.String({ description: "sent" }) });

export function registerEmailVerification(app: App, sendCode: CodeSender | undefined, log: Logger) {
  const send = async (userId: string, email: string): Promise<CodeOutcome> => {
    if (!sendCode) return "unavailable";
    const hour = Math.floor(Date.now() / 3_600_000);
    const count = async (key: string) => {
      const n = await app.redis.incr(key);
      if (n === 1) await app.redis.expire(key, 7_200);
      return n;
    };
    if ((await count(`nt:email-codes:${userId}:${hour}`)) > MAX_CODES_PER_HOUR) return "rate_limited";
    if ((await count(`nt:email-codes-to:${addressKey(email)}:${hour}`)) > MAX_CODES_PER_ADDRESS_PER_HOUR) return "rate_limited";
    const code = newCode();
    if (!(await data.storeEmailCode(app.pg, userId, email, codeHash(userId, email, code), CODE_TTL_MS))) return "unavailable";
    void sendCode(email, codeMessage(code)).catch((err: Error) => log.warn({ userId, err: { message: err.message } }, "confirmation code not sent; the user may ask for another"));
    return "sent";
  };

  app.post("/preferences/email/code", { schema: { response: { 200: CodeOut } } }, async (req) => {
    const who = requireIdentity(req);
    const prefs = await data.preferences(app.pg, who.userId);
    if (!prefs.email) throw conflict("no e-mail address is set: PUT /preferences first", "email");
    if (prefs.emailVerified) throw conflict("the e-mail address is already confirmed", "email");
    const outcome = await send(who.userId, prefs.email);
    if (outcome === "rate_limited") throw new HttpError(429, "TOO_MANY_CODES", `at most ${MAX_CODES_PER_HOUR} codes an hour (and ${MAX_CODES_PER_ADDRESS_PER_HOUR} to one address); try later`, "email", { "retry-after": "3600" });
    if (outcome === "unavailable") throw new HttpError(409, "EMAIL_UNAVAILABLE", "e-mail is not configured on this platform", "email");
    return { emailVerification: outcome };
  });

  app.post("/preferences/email/verify", { schema: { body: VerifyBody, response: { 200: VerifiedOut } } }, async (req) => {
    const who = requireIdentity(req);
    // A wrong try is committed before it is answered (thrown inside, the rollback would forget it).
    const wrongTriesLeft = await app.pg.transaction(async (tx) => {
      const pending = await data.lockEmailCode(tx, who.userId);
      if (!pending?.email) throw conflict("no e-mail address is set: PUT /preferences first", "email");
      if (pending.verified) return undefined;
      if (!pending.hash || pending.expired) throw conflict("no code is waiting (expired, used up, or never sent): ask for one with POST /preferences/email/code", "code");
      const right = sameHash(pending.hash, codeHash(who.userId, pending.email, req.body.code));
      await data.recordCodeTry(tx, who.userId, right, MAX_CODE_TRIES);
      return right ? undefined : Math.max(0, MAX_CODE_TRIES - pending.tries - 1);
    });
    if (wrongTriesLeft !== undefined) throw badRequest(`wrong code (${wrongTriesLeft} tries left for this code)`, "code");
    return { emailVerified: true };
  });

  return { send };
}
