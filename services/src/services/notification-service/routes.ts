/**
 * notification-service HTTP (/api/notifications behind the gateway; the caller's own data, admin
 * may list every dead letter and replay any).
 *   GET  /preferences                 the caller's preferences (defaults when never set)
 *   PUT  /preferences                 e-mail, Telegram chat id, time zone, quiet hours, channels per category;
 *                                     a new e-mail address or chat id gets a confirmation code (address-confirmation.ts)
 *   POST /preferences/email/verify    {code}: the address is confirmed, notices go to it from then on
 *   POST /preferences/email/code      a fresh code to the unconfirmed address
 *   POST /preferences/telegram/verify {code}: the chat is confirmed, notices go to it from then on
 *   POST /preferences/telegram/code   a fresh code to the unconfirmed chat (confirmation-routes.ts)
 *   GET  /webhooks | POST /webhooks   endpoints; POST answers the signing secret, once
 *   (PUT /preferences and POST /webhooks of an account deleted meanwhile: 403 ACCOUNT_DELETED naming userId;
 *   PUT's message says whether its preferences were saved just before the deletion or nothing was)
 *   DELETE /webhooks/:id
 *   GET  /deliveries?limit            recent deliveries and their status
 *   GET  /dead-letters?all=true       dead letters (all: admin)
 *   POST /dead-letters/:id/replay     queue the delivery again with fresh attempts
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { accountDeleted, alreadyReplayed, badRequest, conflict, DeadLetterIdParams, HttpError, NoContent, notFound, Nullable, ReplayedAnswer, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { checkWebhookUrl } from "./channels";
import * as data from "./data";
import { CATEGORIES, CHANNELS, canonicalTimeZone, isTelegramChatId } from "./domain";
import { canonicalAddress } from "./address-confirmation";
import { registerAddressConfirmation, type CodeSender } from "./confirmation-routes";

const HHMM = Type.String({ pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$" });
const ChannelList = Type.Array(Type.Union(CHANNELS.map((c) => Type.Literal(c))), { uniqueItems: true, maxItems: CHANNELS.length });
const PreferencesBody = Type.Object(
  {
    email: Type.Union([Type.String({ format: "email", maxLength: 254 }), Type.Null()]),
    telegramChatId: Type.Union([Type.String({ pattern: "^-?[0-9]{1,20}$" }), Type.Null()]),
    timeZone: Type.String({ minLength: 1, maxLength: 64, default: "UTC" }),
    quietHours: Type.Union([Type.Object({ start: HHMM, end: HHMM }, { additionalProperties: false }), Type.Null()], { default: null }),
    channels: Type.Union([Type.Partial(Type.Object(Object.fromEntries(CATEGORIES.map((c) => [c, ChannelList])), { additionalProperties: false })), Type.Null()], { default: null }),
  },
  { additionalProperties: false },
);

// Responses (OpenAPI; unnamed fields are kept).
const PreferencesOut = ResponseObject({
  email: Nullable(Type.String()),
  emailVerified: Type.Boolean({ description: "the address's owner entered the code sent to it: notices go to it only then" }),
  telegramChatId: Nullable(Type.String({ description: "as Telegram's integer: no leading zeros" })),
  telegramVerified: Type.Boolean({ description: "the bot posted a code to the chat and the user entered it: notices go to it only then" }),
  timeZone: Type.String(),
  quietHours: Type.Unknown({ description: "{ start, end } as HH:MM in timeZone, or null" }),
  channels: Type.Unknown({ description: "channels per category, or null for the defaults" }),
});
const WebhookOut = ResponseObject({ id: Type.String(), url: Type.String(), createdAt: Type.String() });
const DeliveriesOut = ResponseObject({ deliveries: Type.Array(ResponseObject({ channel: Type.String(), status: Type.String() }, { description: "id, notification, kind, attempts, subject, next attempt, last error, created and sent times" })) });
const DeadLettersOut = ResponseObject({ deadLetters: Type.Array(ResponseObject({ channel: Type.String(), attempts: Type.Number() }, { description: "id, delivery, user, notification, kind, reason, created and replayed times" })) });

const delivery = (d: data.DeliveryRow) => ({
  id: d.delivery_id, notificationId: d.dedup_key, kind: d.kind, channel: d.channel, status: d.status, attempts: d.attempts,
  subject: d.subject, nextAttemptAt: d.status === "pending" ? d.next_attempt_at.toISOString() : null, lastError: d.last_error,
  createdAt: d.created_at.toISOString(), sentAt: d.sent_at?.toISOString() ?? null,
});

export function registerRoutes(app: App, o: { allowPrivateWebhooks: boolean; webhookPorts: readonly number[]; maxWebhooks: number; maxPendingPerChannel: number; sendCode: { email?: CodeSender; telegram?: CodeSender }; log: Logger }): void {
  const emailCodes = registerAddressConfirmation(app, "email", o.sendCode.email, o.log);
  const telegramCodes = registerAddressConfirmation(app, "telegram", o.sendCode.telegram, o.log);
  app.get("/preferences", { schema: { response: { 200: PreferencesOut } } }, async (req) => data.preferences(app.pg, requireIdentity(req).userId));

  app.put("/preferences", { schema: { body: PreferencesBody, response: { 200: PreferencesOut } } }, async (req) => {
    const who = requireIdentity(req);
    const b = req.body;
    const timeZone = canonicalTimeZone(b.timeZone);
    if (timeZone === undefined) throw badRequest(`unknown time zone '${b.timeZone.slice(0, 64)}'`, "timeZone");
    if (b.telegramChatId !== null && !isTelegramChatId(b.telegramChatId)) throw badRequest("telegramChatId is not a Telegram chat id: a non-zero integer of at most 52 bits", "telegramChatId");
    const telegramChatId = b.telegramChatId === null ? null : canonicalAddress("telegram", b.telegramChatId);
    const prefs = { email: b.email, telegramChatId, timeZone, quietHours: b.quietHours ?? null, channels: b.channels ?? null };
    const saved = await data.savePreferences(app.pg, who.userId, prefs);
    if (saved === "account_deleted") throw accountDeleted(who.userId, "nothing was saved: it keeps no preferences");
    // A changed address gets its code now (the outcome is answered: sent, rate_limited, unavailable). Deleted
    // after the save committed: 403 saying so (the saved preferences stay with its other data, never used).
    const savedThenDeleted = "these preferences were saved just before the deletion and are used no more (a deleted account is told nothing); no confirmation code is sent";
    const emailVerification = saved.email.changed ? await emailCodes.send(who.userId, b.email!, savedThenDeleted) : undefined;
    const telegramVerification = saved.telegram.changed ? await telegramCodes.send(who.userId, telegramChatId!, savedThenDeleted) : undefined;
    return {
      ...prefs, emailVerified: saved.email.verified, telegramVerified: saved.telegram.verified,
      ...(emailVerification ? { emailVerification } : {}), ...(telegramVerification ? { telegramVerification } : {}),
    };
  });

  app.get("/webhooks", { schema: { response: { 200: ResponseObject({ webhooks: Type.Array(WebhookOut) }) } } }, async (req) => ({ webhooks: await data.webhooks(app.pg, requireIdentity(req).userId) }));

  app.post("/webhooks", { schema: { body: Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }), response: { 201: ResponseObject({ id: Type.String(), url: Type.String(), secret: Type.String({ description: "the signing secret, shown once" }) }) } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const refused = checkWebhookUrl(req.body.url, o.allowPrivateWebhooks, o.webhookPorts);
    if (refused) throw badRequest(`url ${refused}`, "url");
    const hook = { id: randomUUID(), userId: who.userId, url: req.body.url, secret: `whsec_${randomBytes(32).toString("base64url")}` };
    const added = await data.insertWebhook(app.pg, hook, o.maxWebhooks);
    if (added === "account_deleted") throw accountDeleted(who.userId, "it keeps no webhooks");
    if (added === "full") throw conflict(`at most ${o.maxWebhooks} webhook endpoints per user`, "url");
    return reply.status(201).send({ id: hook.id, url: hook.url, secret: hook.secret });
  });

  app.delete("/webhooks/:id", { schema: { params: Type.Object({ id: Type.String({ format: "uuid" }) }), response: { 204: NoContent } } }, async (req, reply) => {
    if (!(await data.deleteWebhook(app.pg, requireIdentity(req).userId, req.params.id))) throw notFound("no such webhook");
    return reply.status(204).send();
  });

  app.get("/deliveries", { schema: { querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }), response: { 200: DeliveriesOut } } }, async (req) => ({
    deliveries: (await data.deliveries(app.pg, requireIdentity(req).userId, req.query.limit)).map(delivery),
  }));

  app.get("/dead-letters", { schema: { querystring: Type.Object({ all: Type.Boolean({ default: false }), limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }), response: { 200: DeadLettersOut } } }, async (req) => {
    const who = requireIdentity(req, req.query.all ? "admin" : undefined);
    const rows = await data.deadLetters(app.pg, req.query.all ? null : who.userId, req.query.limit);
    return {
      deadLetters: rows.map((r) => ({ id: r.dead_letter_id, deliveryId: r.delivery_id, userId: r.user_id, notificationId: r.dedup_key, kind: r.kind, channel: r.channel, reason: r.reason, attempts: r.attempts, createdAt: r.created_at.toISOString(), replayedAt: r.replayed_at?.toISOString() ?? null })),
    };
  });

  app.post("/dead-letters/:id/replay", { schema: { params: DeadLetterIdParams, response: { 200: ReplayedAnswer } } }, async (req) => {
    const who = requireIdentity(req);
    const r = await app.pg.transaction((tx) => data.replayDeadLetter(tx, req.params.id, who.role === "admin" ? null : who.userId, o.maxPendingPerChannel));
    if (!r) throw notFound("no such dead letter");
    if (r === "already") throw alreadyReplayed(req.params.id);
    if (typeof r === "object") throw accountDeleted(r.accountDeleted, "its notices are replayed no more");
    if (r === "full") throw new HttpError(409, "BACKLOG_FULL", `${o.maxPendingPerChannel} deliveries already wait on this channel: replay once some are sent`, "id");
    return { id: req.params.id, status: "replayed" };
  });
}
