/**
 * Confirming an address (address-confirmation.ts): sending a code, and taking it back. The same two
 * routes for each confirmable channel:
 *   POST /preferences/email/code        a fresh code to the caller's unconfirmed e-mail address
 *   POST /preferences/email/verify      {code}
 *   POST /preferences/telegram/code     a fresh code posted by the bot to the caller's unconfirmed chat
 *   POST /preferences/telegram/verify   {code}
 * A code is sent after it is stored, without the request waiting for the relay or the Bot API (a
 * stalled SMTP relay would hold it up to 40 s, past the gateway's timeout): a send that fails is
 * logged and the user asks for another. At most MAX_CODES_PER_HOUR codes per user and channel an
 * hour, and MAX_CODES_PER_ADDRESS_PER_HOUR to one address or chat (whichever users ask).
 */
import type { Logger } from "pino";
import { accountDeleted, badRequest, conflict, HttpError, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import * as data from "./data";
import {
  addressKey, CODE_TTL_MS, codeHash, codeMessage, CONFIRMATION, MAX_CODE_TRIES, MAX_CODES_PER_ADDRESS_PER_HOUR, MAX_CODES_PER_HOUR, newCode, sameHash,
  type CodeMessage, type Confirmable,
} from "./address-confirmation";
import { lockCode, recordCodeTry, storeCode } from "./confirmation-data";

/** Sends one message to an address (the channel's client: SMTP, the Bot API). */
export type CodeSender = (to: string, m: CodeMessage) => Promise<void>;

/** What became of a code: `sent` (handed to the channel), `unavailable` (the channel is off), `rate_limited`. */
export type CodeOutcome = "sent" | "unavailable" | "rate_limited";

const VerifyBody = Type.Object({ code: Type.String({ pattern: "^[0-9]{6}$", description: "the 6 digits sent to the address" }) }, { additionalProperties: false });

/** The caller's address on the channel and whether it is confirmed. */
const addressOf = (p: data.Preferences, channel: Confirmable) => (channel === "email" ? { address: p.email, verified: p.emailVerified } : { address: p.telegramChatId, verified: p.telegramVerified });

export function registerAddressConfirmation(app: App, channel: Confirmable, sendCode: CodeSender | undefined, log: Logger) {
  const say = CONFIRMATION[channel];
  const verifiedKey = `${channel}Verified`;
  const outcomeKey = `${channel}Verification`;
  /** `deleted`: what a 403 ACCOUNT_DELETED (the account deleted before the code was stored) says happened. */
  const send = async (userId: string, address: string, deleted = `no code is sent to its ${say.what}`): Promise<CodeOutcome> => {
    if (!sendCode) return "unavailable";
    const hour = Math.floor(Date.now() / 3_600_000);
    const count = async (key: string) => {
      const n = await app.redis.incr(key);
      if (n === 1) await app.redis.expire(key, 7_200);
      return n;
    };
    if ((await count(`nt:${channel}-codes:${userId}:${hour}`)) > MAX_CODES_PER_HOUR) return "rate_limited";
    if ((await count(`nt:${channel}-codes-to:${addressKey(channel, address)}:${hour}`)) > MAX_CODES_PER_ADDRESS_PER_HOUR) return "rate_limited";
    const code = newCode();
    const stored = await storeCode(app.pg, channel, userId, address, codeHash(channel, userId, address, code), CODE_TTL_MS);
    // Deleted while this request was under way: no code is sent for the account (403 ACCOUNT_DELETED).
    if (stored === "account_deleted") throw accountDeleted(userId, deleted);
    if (!stored) return "unavailable";
    void sendCode(address, codeMessage(channel, code)).catch((err: Error) => log.warn({ userId, channel, err: { message: err.message }, detail: (err as { detail?: string }).detail }, "confirmation code not sent; the user may ask for another"));
    return "sent";
  };
  const noAddress = () => conflict(`no ${say.what} is set: PUT /preferences first`, say.field);

  app.post(`/preferences/${channel}/code`, { schema: { response: { 200: ResponseObject({ [outcomeKey]: Type.String({ description: "sent" }) }) } } }, async (req) => {
    const who = requireIdentity(req);
    const { address, verified } = addressOf(await data.preferences(app.pg, who.userId), channel);
    if (!address) throw noAddress();
    if (verified) throw conflict(`the ${say.what} is already confirmed`, say.field);
    const outcome = await send(who.userId, address);
    if (outcome === "rate_limited") throw new HttpError(429, "TOO_MANY_CODES", `at most ${MAX_CODES_PER_HOUR} codes an hour (and ${MAX_CODES_PER_ADDRESS_PER_HOUR} to one ${say.what}); try later`, say.field, { "retry-after": "3600" });
    if (outcome === "unavailable") throw new HttpError(409, say.unavailableCode, `${say.name} is not configured on this platform`, say.field);
    return { [outcomeKey]: outcome };
  });

  app.post(`/preferences/${channel}/verify`, { schema: { body: VerifyBody, response: { 200: ResponseObject({ [verifiedKey]: Type.Boolean() }) } } }, async (req) => {
    const who = requireIdentity(req);
    // A wrong try is committed before it is answered (thrown inside, the rollback would forget it).
    const wrongTriesLeft = await app.pg.transaction(async (tx) => {
      const pending = await lockCode(tx, channel, who.userId);
      if (pending === "account_deleted") throw accountDeleted(who.userId, `its ${say.what} is confirmed no more`);
      if (!pending?.address) throw noAddress();
      if (pending.verified) return undefined;
      if (!pending.hash || pending.expired) throw conflict(`no code is waiting (expired, used up, or never sent): ask for one with POST /preferences/${channel}/code`, "code");
      const right = sameHash(pending.hash, codeHash(channel, who.userId, pending.address, req.body.code));
      await recordCodeTry(tx, channel, who.userId, right, MAX_CODE_TRIES);
      return right ? undefined : Math.max(0, MAX_CODE_TRIES - pending.tries - 1);
    });
    if (wrongTriesLeft !== undefined) throw badRequest(`wrong code (${wrongTriesLeft} tries left for this code)`, "code");
    return { [verifiedKey]: true };
  });

  return { send };
}
