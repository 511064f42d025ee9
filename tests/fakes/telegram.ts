/**
 * A local Telegram Bot API (https://core.telegram.org/bots/api) speaking the subset the platform
 * uses: `POST /bot<token>/sendMessage` with a JSON body, answering `{ ok, result }` or
 * `{ ok: false, error_code, description, parameters? }` as the real API does. Unknown tokens get
 * 401, unknown chats 400 "chat not found"; `throttle(n, retryAfterS)` makes the next n calls 429.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface SentMessage { chatId: string; text: string; messageId: number; date: number }

export class FakeTelegram {
  readonly messages: SentMessage[] = [];
  readonly chats = new Set<string>();
  private server?: Server;
  private throttled = 0;
  private retryAfterS = 1;
  url = "";

  constructor(readonly token: string) {}

  throttle(calls: number, retryAfterS: number): void {
    this.throttled = calls;
    this.retryAfterS = retryAfterS;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const answer = (status: number, body: object) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        const fail = (code: number, description: string, parameters?: object) => answer(code, { ok: false, error_code: code, description, ...(parameters ? { parameters } : {}) });
        const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? "");
        if (!m || m[1] !== this.token) return fail(401, "Unauthorized");
        if (m[2] !== "sendMessage") return fail(404, "Not Found: method not found");
        if (req.method !== "POST" || !String(req.headers["content-type"]).startsWith("application/json")) return fail(400, "Bad Request: expected a JSON body");
        let body: { chat_id?: unknown; text?: unknown };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          return fail(400, "Bad Request: can't parse JSON");
        }
        if (this.throttled > 0) {
          this.throttled--;
          return fail(429, `Too Many Requests: retry after ${this.retryAfterS}`, { retry_after: this.retryAfterS });
        }
        const chatId = String(body.chat_id ?? "");
        if (typeof body.text !== "string" || body.text.length === 0) return fail(400, "Bad Request: message text is empty");
        if (body.text.length > 4096) return fail(400, "Bad Request: message is too long");
        if (!this.chats.has(chatId)) return fail(400, "Bad Request: chat not found");
        const msg = { chatId, text: body.text, messageId: this.messages.length + 1, date: Math.floor(Date.now() / 1000) };
        this.messages.push(msg);
        answer(200, { ok: true, result: { message_id: msg.messageId, date: msg.date, chat: { id: Number(chatId), type: "private" }, text: msg.text } });
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
