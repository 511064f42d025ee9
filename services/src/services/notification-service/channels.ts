/**
 * The three delivery channels. Each `send` resolves on success and throws a `DeliveryError` saying
 * whether a retry can help (`permanent`) and, when the far end said so, when to retry.
 *   email     SMTP through nodemailer (STARTTLS required unless SMTP_REQUIRE_TLS=false)
 *   telegram  the Bot API's sendMessage over HTTPS (plain text: no parse_mode, nothing to inject)
 *   webhook   POST of the notice as JSON, signed (domain.webhookSignature), to the user's endpoint
 * Webhook URLs are user input: only https to public addresses, checked when the endpoint is
 * registered and again on the address actually connected to (the kit's public-only lookup, which
 * resolves with c-ares, off the thread pool: kit/public-egress.ts), so a name that later resolves to
 * 10.x / 127.x / 169.254.x cannot reach inside the platform.
 */
import http from "node:http";
import https from "node:https";
import ipaddr from "ipaddr.js";
import nodemailer from "nodemailer";
import { AnswerTooLargeError, readTextCapped } from "../../kit/capped-body";
import { isPublicAddress, publicOnlyLookup } from "../../kit/public-egress";
import { scrubString } from "../../kit/telemetry/scrub";
import { webhookBody, webhookSignature, type Notice } from "./domain";

/**
 * `message` is what the user reads (`lastError` of GET /deliveries, a dead letter's `reason`): fixed
 * texts and codes of ours, never a far end's words. `detail` is for the operator's log only: what the
 * far end or the network said, masked (see the worker).
 */
export class DeliveryError extends Error {
  constructor(message: string, readonly permanent: boolean, readonly retryAfterMs?: number, readonly detail?: string) {
    super(message);
  }
}

/**
 * The user's text of an SMTP failure: its class and the relay's reply code. The relay's own words
 * reached users before ("smtp: 535 Invalid login: ..."), and a relay may echo the login it refused.
 */
export function smtpFailureText(err: { code?: unknown; responseCode?: unknown; command?: unknown }): string {
  const reply = typeof err.responseCode === "number" && Number.isInteger(err.responseCode) && err.responseCode >= 200 && err.responseCode < 600 ? ` (${err.responseCode})` : "";
  switch (err.code) {
    case "EAUTH":
      return `smtp: authentication refused${reply}`;
    case "EENVELOPE":
      return err.command === "MAIL FROM" ? `smtp: sender refused${reply}` : err.command === "RCPT TO" ? `smtp: recipient refused${reply}` : `smtp: message refused${reply}`;
    case "EMESSAGE":
      return `smtp: message refused${reply}`;
    case "ECONNECTION": case "ETIMEDOUT": case "ESOCKET": case "EDNS": case "ETLS": case "EREQUIRETLS":
      return "smtp: relay unreachable";
    default:
      return `smtp: send failed${reply}`;
  }
}

/** The relay's text for the operator's log: the login masked wherever the relay echoed it (as it is, or base64 as AUTH sent it), then credential shapes. */
function relayDetail(err: Error, s: Pick<SmtpSettings, "user" | "password">): string {
  let text = `${(err as { code?: string }).code ?? ""} ${err.message}`.slice(0, 500);
  const b64 = (v: string) => Buffer.from(v, "utf8").toString("base64");
  const secrets = s.password ? [s.password, b64(s.password), b64(`\u0000${s.user ?? ""}\u0000${s.password}`)] : [];
  for (const secret of secrets) text = text.split(secret).join("***");
  return scrubString(text);
}

/**
 * What a user reads of a webhook that got no HTTP answer: one text whatever the network said
 * (connection refused, a timeout, a reset, not TLS, a bad certificate, no such name), so `lastError`
 * is no scanner of other hosts' ports. The code goes to the operator's log.
 */
export const WEBHOOK_UNREACHABLE = "webhook: endpoint unreachable";

export interface SmtpSettings { host: string; port: number; secure: boolean; requireTls: boolean; rejectUnauthorized: boolean; user?: string; password?: string; from: string }

/** The SMTP clocks: connecting, the greeting, and an idle socket (the relay is the operator's, not a user's). */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 };
/** About the longest an e-mail send waits on a relay that stops answering (the lease must outlast it). */
export const SMTP_SEND_BOUND_MS = SMTP_TIMEOUTS.connectionTimeout + SMTP_TIMEOUTS.greetingTimeout + SMTP_TIMEOUTS.socketTimeout;

export function emailChannel(s: SmtpSettings) {
  const transport = nodemailer.createTransport({
    host: s.host, port: s.port, secure: s.secure, requireTLS: s.requireTls,
    auth: s.user ? { user: s.user, pass: s.password ?? "" } : undefined,
    tls: { rejectUnauthorized: s.rejectUnauthorized },
    ...SMTP_TIMEOUTS,
  });
  return {
    async send(to: string, n: Pick<Notice, "dedupKey" | "subject" | "text">): Promise<void> {
      try {
        await transport.sendMail({ from: s.from, to, subject: n.subject, text: n.text, headers: { "X-Notification-Id": n.dedupKey } });
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode;
        // 5xx from the server (mailbox unknown, message refused) will not change on retry.
        throw new DeliveryError(smtpFailureText(err as object), code !== undefined && code >= 500 && code < 600, undefined, relayDetail(err as Error, s));
      }
    },
    close: () => transport.close(),
  };
}

/** The most of a Bot API answer read: its answers are a few hundred bytes. */
export const TELEGRAM_ANSWER_MAX_BYTES = 64 * 1024;

/**
 * What a user reads of a Telegram failure: a fixed text by the answer's HTTP status (or Telegram's
 * `error_code` when the status says nothing). Telegram's `description` reached users before ("telegram:
 * 400 Bad Request: chat not found"), and so did whatever a hostile or misconfigured TELEGRAM_API_URL
 * answered in it. The description goes to the operator's log only, masked.
 */
export const TELEGRAM_UNREACHABLE = "telegram: unreachable";
export function telegramFailureText(status: number, errorCode?: unknown): string {
  const code = status >= 400 && status < 600 ? status : typeof errorCode === "number" && Number.isInteger(errorCode) ? errorCode : status;
  if (code === 400 || code === 403) return `telegram: chat not found or bot blocked (${code})`;
  if (code === 429) return "telegram: rate limited (429)";
  if (code === 401 || code === 404) return `telegram: bot token refused (${code})`;
  if (code >= 500 && code < 600) return `telegram: server error (${code})`;
  return "telegram: unexpected answer";
}

export function telegramChannel(apiUrl: string, token: string, timeoutMs: number) {
  return {
    async send(chatId: string, n: Pick<Notice, "subject" | "text">): Promise<void> {
      const text = `${n.subject}\n\n${n.text}`.slice(0, 4096);
      let res: Response;
      try {
        res = await fetch(`${apiUrl}/bot${token}/sendMessage`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ chat_id: chatId, text, disable_web_page_preview: true }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        // Never the URL, even in the detail: it holds the bot token (masked again by scrubString).
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        throw new DeliveryError(TELEGRAM_UNREACHABLE, false, undefined, scrubString(`${(err as Error).name}${cause ? ` ${cause}` : ""}`.split(token).join("***")));
      }
      type Answer = { ok?: boolean; error_code?: number; description?: string; parameters?: { retry_after?: number } };
      let body: Answer = {};
      try {
        const parsed: unknown = JSON.parse(await readTextCapped(res, TELEGRAM_ANSWER_MAX_BYTES));
        if (parsed && typeof parsed === "object") body = parsed as Answer;
      } catch (err) {
        // The Bot API answers a few hundred bytes: a larger answer is not one of its own (retried).
        if (err instanceof AnswerTooLargeError) throw new DeliveryError(`telegram: ${err.message}`, false);
      }
      if (res.ok && body.ok === true) return;
      const retryAfter = typeof body.parameters?.retry_after === "number" && body.parameters.retry_after > 0 ? Math.min(body.parameters.retry_after, 86_400) : undefined;
      const why = telegramFailureText(res.status, body.error_code);
      const detail = scrubString(`${res.status} ${String(body.description ?? "").slice(0, 200)}`.split(token).join("***"));
      if (res.status === 429) throw new DeliveryError(why, false, retryAfter ? retryAfter * 1000 : undefined, detail);
      // 400 chat not found / 403 bot blocked by the user: retrying will not help.
      throw new DeliveryError(why, res.status === 400 || res.status === 403, undefined, detail);
    },
  };
}

export { isPublicAddress };

/** The webhook ports allowed unless the operator says otherwise (NOTIFY_WEBHOOK_PORTS): https's. */
export const DEFAULT_WEBHOOK_PORTS: readonly number[] = [443];

/**
 * A host name DNS can answer for (the URL parser has lower-cased and punycoded it): at most 253
 * characters, labels of 1 to 63. "https://a..b/" and a 2,000-character label were registered, each
 * delivery then failing its lookup until the dead letter.
 */
const isDnsName = (host: string): boolean => host.length <= 253 && host.split(".").every((l) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l));

/**
 * A webhook URL a user may register, or the reason it is refused. Only `ports` (443 unless the
 * operator lists others): any public port let a user have the service open a TLS hello and a signed
 * POST to `host:22` or `:25`. `allowPrivate` (tests, dev) lifts the port rule with the address rule.
 */
export function checkWebhookUrl(raw: string, allowPrivate: boolean, ports: readonly number[] = DEFAULT_WEBHOOK_PORTS): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return "must be an absolute URL";
  }
  if (u.username || u.password) return "must not carry credentials";
  if (u.protocol !== "https:" && !(allowPrivate && u.protocol === "http:")) return "must use https";
  // "localhost." is localhost: a trailing dot only roots the name.
  const host = u.hostname.replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (!ipaddr.isValid(host) && !isDnsName(host)) return "must name a host by an address or a DNS name (labels of 1 to 63 letters, digits or hyphens, 253 characters in all)";
  if (!allowPrivate && (host === "localhost" || host.endsWith(".localhost") || (ipaddr.isValid(host) && !isPublicAddress(host)))) return "must not point at a private, loopback or link-local address";
  const port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
  if (!allowPrivate && !ports.includes(port)) return `must use port ${ports.join(" or ")}`;
  return null;
}

/** The most of a webhook endpoint's answer body read (and thrown away) before the connection is dropped. */
export const WEBHOOK_ANSWER_MAX_BYTES = 64 * 1024;

export function webhookChannel(o: { timeoutMs: number; allowPrivate: boolean; ports?: readonly number[]; dnsServers?: readonly string[]; now?: () => number }) {
  const lookup = o.allowPrivate ? undefined : publicOnlyLookup({ servers: o.dnsServers, timeoutMs: o.timeoutMs });
  return {
    async send(url: string, secret: string, n: Pick<Notice, "dedupKey" | "kind" | "at" | "data">): Promise<void> {
      const refused = checkWebhookUrl(url, o.allowPrivate, o.ports);
      if (refused) throw new DeliveryError(`webhook url ${refused}`, true);
      const body = webhookBody(n);
      const ts = Math.floor((o.now?.() ?? Date.now()) / 1000);
      const u = new URL(url);
      let answered = false; // an HTTP status line came back
      const status = await new Promise<number>((resolve, reject) => {
        const req = (u.protocol === "https:" ? https : http).request(
          u,
          {
            method: "POST",
            // Two clocks: `timeout` is the socket's idleness; `signal` bounds the whole exchange, the
            // answer's body included. With the idle one alone, an endpoint answering a byte every half
            // second held its delivery, and the sender's batch behind it, for as long as it liked.
            timeout: o.timeoutMs,
            signal: AbortSignal.timeout(o.timeoutMs),
            lookup,
            headers: {
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
              "user-agent": "ai-trading-notifications/1",
              "x-notification-id": n.dedupKey,
              "x-notification-timestamp": String(ts),
              "x-notification-signature": webhookSignature(secret, ts, body),
            },
          },
          (res) => {
            answered = true;
            // The body is not needed: drained so the socket is released, up to a cap. Without one, an
            // endpoint answering an endless body at full speed was read for the whole timeout, on every
            // attempt of every notice (gigabytes into the service a delivery, for nothing).
            let bytes = 0;
            res.on("data", (chunk: Buffer) => {
              bytes += chunk.length;
              if (bytes > WEBHOOK_ANSWER_MAX_BYTES) res.destroy(Object.assign(new Error("answer too large"), { code: `ANSWER_OVER_${WEBHOOK_ANSWER_MAX_BYTES}_BYTES` }));
            });
            res.on("end", () => resolve(res.statusCode ?? 0));
            res.on("error", reject);
          },
        );
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end(body);
      }).catch((err: Error & { code?: string; syscall?: string }) => {
        const timedOut = err.name === "AbortError" || err.name === "TimeoutError" || err.code === "ABORT_ERR" || err.message === "timeout";
        // c-ares's errors (syscall queryA / queryAaaa) say what the name server answered: not the endpoint's.
        const detail = scrubString(`${err.syscall?.startsWith("query") ? "dns " : ""}${err.code ?? err.name}: ${err.message}`.slice(0, 300));
        // Refused by us (a private address): the user's own name says so, nothing about the host.
        if (err.code === "EBLOCKED") throw new DeliveryError("webhook: EBLOCKED", true, undefined, detail);
        if (!answered) throw new DeliveryError(WEBHOOK_UNREACHABLE, false, undefined, detail);
        if (err.code === `ANSWER_OVER_${WEBHOOK_ANSWER_MAX_BYTES}_BYTES`) throw new DeliveryError(`webhook: ${err.code}`, false, undefined, detail);
        throw new DeliveryError(timedOut ? `webhook: no complete answer within ${o.timeoutMs} ms` : "webhook: answer cut short", false, undefined, detail);
      });
      // 410 Gone: the receiver says the endpoint is no more. Everything else non-2xx is retried.
      if (status === 410) throw new DeliveryError("webhook: 410 gone", true);
      if (status < 200 || status >= 300) throw new DeliveryError(`webhook: HTTP ${status}`, false);
    },
  };
}
