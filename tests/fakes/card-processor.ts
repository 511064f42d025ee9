/**
 * A local card processor speaking the subset of Stripe's documented HTTP API that payment-service
 * uses, so the real `stripe` SDK talks to it unchanged (the way Stripe's own stripe-mock is used):
 *   POST /v1/payment_intents          form-encoded, `confirm=true`, `Idempotency-Key` honoured
 *                                     (same key + same params -> the same response; other params -> 400)
 *   GET  /v1/payment_intents/:id
 *   GET  /v1/payment_intents          Stripe's "List all PaymentIntents": `customer`, `created[gte]`, `limit`,
 *                                     `starting_after` (newest first, `has_more`)
 *   GET  /v1/payment_intents/search   query `metadata['intent_id']:'<id>'` (eventually consistent, as
 *                                     Stripe's: the intents in `unindexed` are not found yet)
 *   POST /v1/refunds                  payment_intent, amount (over what is left: refused unless
 *                                     `refusesExcessRefunds` is off), metadata; `Idempotency-Key` honoured;
 *                                     answers `refundStatus` (succeeded, or pending as for slower methods)
 *                                     and queues `refund.created`; `updateRefund()` moves one later and
 *                                     queues `charge.refund.updated`, `refund.updated` (and `refund.failed`);
 *                                     `refundOnDashboard()` makes one without our metadata;
 *                                     `refundsDiverge` makes them of another amount or currency
 *   GET  /v1/refunds                  Stripe's "List all refunds": `payment_intent` filter, `limit`,
 *                                     `starting_after` (newest first, `has_more`)
 *   POST /v1/customers                `Idempotency-Key` honoured
 *   DELETE /v1/customers/:id          as Stripe: the customer is gone, its methods detached (never usable again);
 *                                     404 resource_missing for one it has not; `customerDeletes` can drop the connection
 *   POST /v1/payment_methods/:id/attach, /detach
 * Auth: `Authorization: Bearer <apiKey>`. Test payment methods as Stripe names them:
 * `pm_card_visa` succeeds, `pm_card_chargeDeclined` is declined (card_declined), `pm_card_authenticationRequired`
 * asks for 3D Secure (`requires_action`; with `off_session=true` declined authentication_required); attaching one to
 * a customer makes a new method (its own id), as in Stripe's test mode. `newCard()` makes a token as
 * Stripe.js does in a user's browser: unattached, usable once without a customer. Stripe's rules
 * for charging a method: one attached to a customer only with that customer; an unattached one once;
 * an unknown one never (resource_missing). Attaching a method attached to another customer, used,
 * detached or unknown is refused.
 * mode "async": confirmation answers `processing`; `settle()` later moves it to succeeded and
 * sends the `payment_intent.succeeded` webhook. Webhooks are signed as Stripe documents them:
 * header `Stripe-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; undelivered
 * ones stay queued for `redeliver()` (Stripe retries too).
 */
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeIntent {
  id: string;
  object: "payment_intent";
  amount: number;
  amount_received: number;
  currency: string;
  status: string;
  payment_method: string;
  description: string | null;
  metadata: Record<string, string>;
  customer: string | null;
  created: number;
  livemode: false;
  last_payment_error: { code: string; message: string; type: string } | null;
}

export interface FakeRefund {
  id: string;
  object: "refund";
  payment_intent: string;
  amount: number;
  currency: string;
  status: string;
  failure_reason?: string;
  metadata: Record<string, string>;
}

export interface WebhookDelivery {
  event: { id: string; type: string; created: number; data: { object: unknown } };
  delivered: boolean;
  attempts: number;
  lastStatus?: number;
}

const rid = (prefix: string) => `${prefix}_${randomBytes(12).toString("hex")}`;

export interface FakePaymentMethod {
  id: string;
  customer: string | null;
  declines: boolean;
  /** Every charge asks the cardholder to authenticate (3D Secure): `requires_action`, or with `off_session` an `authentication_required` decline. */
  authenticates?: boolean;
  /** Charged once without a customer, or detached: never usable again (Stripe's rule). */
  spent: boolean;
}
/** Stripe's test tokens: usable without a customer any number of times; attaching one makes a new method. */
const TEST_TOKENS: Record<string, { declines: boolean; authenticates?: boolean }> = {
  pm_card_visa: { declines: false },
  pm_card_chargeDeclined: { declines: true },
  pm_card_authenticationRequired: { declines: false, authenticates: true },
};
const invalid = (message: string, code?: string) => ({ error: { type: "invalid_request_error", param: "payment_method", message, ...(code ? { code } : {}) } });

/** Decodes Stripe's bracketed form encoding (`metadata[intent_id]=x`) one level deep. */
function parseForm(body: string): Record<string, string | Record<string, string>> {
  const out: Record<string, string | Record<string, string>> = {};
  for (const [k, v] of new URLSearchParams(body)) {
    const m = /^([a-z_]+)\[([^\]]+)\]$/.exec(k);
    if (m) {
      const o = (out[m[1]] ??= {}) as Record<string, string>;
      o[m[2]] = v;
    } else out[k] = v;
  }
  return out;
}

export class FakeCardProcessor {
  readonly intents = new Map<string, FakeIntent>();
  readonly refunds: FakeRefund[] = [];
  /** The status a new refund gets (Stripe: `succeeded` for most cards, `pending` for slower methods, rarely `failed` at once). */
  refundStatus: "succeeded" | "pending" | "failed" = "succeeded";
  /**
   * How refund requests fare on the way: "answer-lost" makes the refund and then drops the
   * connection before answering (a timeout or a crash on our side: the money went out, we never
   * heard); "unreachable" drops the connection without making it (the processor never saw it).
   */
  refundRequests: "ok" | "answer-lost" | "unreachable" = "ok";
  /** "unreachable": a customer's deletion drops the connection, nothing deleted (the processor down for it). */
  customerDeletes: "ok" | "unreachable" = "ok";
  /**
   * While set, each new refund is made off what was asked (a processor diverging from our record):
   * `amountOff` added to its amount, `currency` instead of the payment's; its answer, the list and its
   * events all carry that.
   */
  refundsDiverge: { amountOff?: number; currency?: string } | undefined;
  /**
   * While set, each new PaymentIntent is made off what was asked (a processor diverging from our
   * request): `amountOff` added to its amount, `currency` instead of the one asked; its answer, lookups
   * and events all carry that.
   */
  chargesDiverge: { amountOff?: number; currency?: string } | undefined;
  /** Delay before answering a refund list (a test can make two lookups overlap). */
  refundListDelayMs = 0;
  /** While set, a refund list is read and then answered only once it resolves (a processor stalled mid-call). */
  refundListHold: Promise<void> | undefined;
  /** Refund list requests received (a test can wait until a lookup is at the processor). */
  refundListsReceived = 0;
  readonly webhooks: WebhookDelivery[] = [];
  readonly paymentMethods = new Map<string, FakePaymentMethod>();
  readonly customers = new Map<string, Record<string, string>>();
  /** Intents the search does not find yet (Stripe's search index lags, by up to a minute or more in an outage). */
  readonly unindexed = new Set<string>();
  /** Number of POST /v1/payment_intents requests that created (not replayed) an intent. */
  created = 0;
  mode: "sync" | "async" = "sync";
  /**
   * false: a refund over what is left of the charge is paid anyway, as by a processor that does not
   * check (a test of payment-service's own bound must not lean on the processor's).
   */
  refusesExcessRefunds = true;
  webhookUrl?: string;
  /**
   * Called when a create request arrives, before the processor acts on it (nothing exists there yet:
   * a processor stalled mid-call); `createsReceived` counts the requests that arrived.
   */
  beforeCreate?: () => Promise<void>;
  createsReceived = 0;
  /** Called after an intent is created, before the HTTP answer: a test can kill the caller here. */
  beforeAnswer?: (intent: FakeIntent) => Promise<void>;

  /**
   * Holds every answer (beforeAnswer) until `release()`: `reached` resolves once one is held, the
   * call at the processor. Undone by setting `beforeAnswer` to undefined.
   */
  holdAnswers(): { reached: Promise<void>; release: () => void } {
    let arrived!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (arrived = r));
    const released = new Promise<void>((r) => (release = r));
    this.beforeAnswer = async () => {
      arrived();
      await released;
    };
    return { reached, release };
  }
  private readonly idem = new Map<string, { params: string; status: number; body: string }>();
  private server?: Server;
  url = "";

  /** Keys made up per run unless a test needs its own (the service is configured with `env`). */
  constructor(
    readonly apiKey = `sk_test_${randomBytes(12).toString("hex")}`,
    readonly webhookSecret = `whsec_${randomBytes(16).toString("hex")}`,
  ) {}

  /** payment-service's settings for this processor (once started: the URL is known then). */
  get env(): { PAYMENT_PROCESSOR_URL: string; PAYMENT_PROCESSOR_API_KEY: string; PAYMENT_WEBHOOK_SECRET: string } {
    if (!this.url) throw new Error("start() the fake card processor before reading its env");
    return { PAYMENT_PROCESSOR_URL: this.url, PAYMENT_PROCESSOR_API_KEY: this.apiKey, PAYMENT_WEBHOOK_SECRET: this.webhookSecret };
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((e) => this.send(res, 500, { error: { type: "api_error", message: String(e) } })));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** A card token as Stripe.js makes it in a user's browser: unattached, not used yet. */
  newCard(declines = false): string {
    const id = rid("pm");
    this.paymentMethods.set(id, { id, customer: null, declines, spent: false });
    return id;
  }

  /** Succeeded charges of one payment method. */
  chargesOf(paymentMethod: string): FakeIntent[] {
    return [...this.intents.values()].filter((i) => i.payment_method === paymentMethod && i.status === "succeeded");
  }

  /** Succeeded charges per our intent id (metadata), to prove nothing was charged twice. */
  chargesFor(intentId: string): number {
    return [...this.intents.values()].filter((i) => i.metadata.intent_id === intentId && i.status === "succeeded").length;
  }

  get succeeded(): FakeIntent[] {
    return [...this.intents.values()].filter((i) => i.status === "succeeded");
  }

  /** Async mode: finishes processing intents and sends their webhooks. */
  async settle(filter: (i: FakeIntent) => boolean = () => true): Promise<void> {
    for (const i of this.intents.values())
      if (i.status === "processing" && filter(i)) {
        i.status = "succeeded";
        i.amount_received = i.amount;
        this.queueEvent("payment_intent.succeeded", i);
      }
    await this.redeliver();
  }

  /**
   * The processor cancels its processing intents that `filter` takes (on its dashboard, or an
   * authentication that expired): `payment_intent.canceled` queued for each, delivered unless
   * `deliver` is false (its webhook lost). Answers the events.
   */
  async cancel(filter: (i: FakeIntent) => boolean, deliver = true): Promise<WebhookDelivery[]> {
    const from = this.webhooks.length;
    for (const i of this.intents.values())
      if (i.status === "processing" && filter(i)) {
        i.status = "canceled";
        this.queueEvent("payment_intent.canceled", i);
      }
    const queued = this.webhooks.slice(from);
    if (deliver) await this.deliverAll(queued);
    return queued;
  }

  /** Signs a body the way Stripe documents it (also used by tests to forge and replay). */
  sign(body: string, t = Math.floor(Date.now() / 1000), secret = this.webhookSecret): string {
    return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
  }

  /** Delivers every undelivered webhook once, in order. */
  async redeliver(): Promise<void> {
    for (const w of this.webhooks) if (!w.delivered) await this.deliver(w);
  }

  /** Delivers `ws` one after another (each again if delivered before); answers our outcome to each. */
  async deliverAll(ws: readonly WebhookDelivery[]): Promise<(string | undefined)[]> {
    const out: (string | undefined)[] = [];
    for (const w of ws) out.push(await this.deliver(w));
    return out;
  }

  /** The processor's refund made for our refund `refundId` (its metadata.refund_id). */
  refundOf(refundId: string): FakeRefund {
    const found = this.refunds.find((r) => r.metadata.refund_id === refundId);
    if (!found) throw new Error(`the processor holds no refund for ${refundId}`);
    return found;
  }

  /** Delivers one webhook (again, if it was delivered: a replay), signed now; answers our outcome. */
  async deliver(w: WebhookDelivery): Promise<string | undefined> {
    if (!this.webhookUrl) return undefined;
    const body = JSON.stringify(w.event);
    w.attempts++;
    try {
      const r = await fetch(this.webhookUrl, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": this.sign(body) }, body });
      w.lastStatus = r.status;
      w.delivered = r.ok;
      const text = await r.text();
      return r.ok ? (JSON.parse(text) as { outcome?: string }).outcome : undefined;
    } catch {
      w.delivered = false;
      return undefined;
    }
  }

  /**
   * The processor moves a refund to `status` (a refund can fail after it succeeded: a closed card) and
   * queues Stripe's events for it, undelivered; `created` (unix s) defaults to now. Answers the events.
   */
  updateRefund(id: string, status: "pending" | "requires_action" | "succeeded" | "failed" | "canceled", o: { failureReason?: string; created?: number } = {}): WebhookDelivery[] {
    const r = this.refunds.find((x) => x.id === id);
    if (!r) throw new Error(`no refund ${id}`);
    r.status = status;
    if (o.failureReason) r.failure_reason = o.failureReason;
    const from = this.webhooks.length;
    for (const type of ["charge.refund.updated", "refund.updated", ...(status === "failed" ? ["refund.failed"] : [])]) this.queueEvent(type, r, o.created);
    return this.webhooks.slice(from);
  }

  /**
   * A refund made on the processor's dashboard (none of our metadata): `status` as given (succeeded
   * by default), `refund.created` queued, undelivered. Answers the refund and its event.
   */
  refundOnDashboard(paymentIntent: string, amount: number, status: "pending" | "succeeded" = "succeeded", metadata: Record<string, string> = {}): { refund: FakeRefund; created: WebhookDelivery } {
    const i = this.intents.get(paymentIntent);
    if (!i) throw new Error(`no payment intent ${paymentIntent}`);
    const refund: FakeRefund = { id: rid("re"), object: "refund", payment_intent: i.id, amount, currency: i.currency, status, metadata };
    this.refunds.push(refund);
    this.queueEvent("refund.created", refund);
    return { refund, created: this.webhooks[this.webhooks.length - 1] };
  }

  private queueEvent(type: string, object: FakeIntent | FakeRefund, created = Math.floor(Date.now() / 1000)): void {
    this.webhooks.push({ event: { id: rid("evt"), type, created, data: { object: { ...object } } }, delivered: false, attempts: 0 });
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json", "request-id": rid("req") });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString();
    if (req.headers.authorization !== `Bearer ${this.apiKey}`)
      return this.send(res, 401, { error: { type: "invalid_request_error", message: "Invalid API Key provided" } });
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    if (req.method === "POST" && path === "/v1/payment_intents") {
      this.createsReceived++;
      await this.beforeCreate?.();
      const key = req.headers["idempotency-key"];
      if (typeof key === "string") {
        const prev = this.idem.get(key);
        if (prev && prev.params !== raw)
          return this.send(res, 400, { error: { type: "idempotency_error", message: "Keys for idempotent requests can only be used with the same parameters they were first used with." } });
        if (prev) {
          res.writeHead(prev.status, { "content-type": "application/json", "idempotent-replayed": "true" });
          return void res.end(prev.body);
        }
      }
      const p = parseForm(raw);
      const amount = Number(p.amount);
      if (!Number.isSafeInteger(amount) || amount < 50) return this.send(res, 400, { error: { type: "invalid_request_error", param: "amount", message: "Amount must be at least 50 cents" } });
      const pm = String(p.payment_method ?? "");
      const customer = typeof p.customer === "string" ? p.customer : null;
      const method = this.paymentMethods.get(pm);
      const test = TEST_TOKENS[pm];
      if (!method && !(test && !customer)) return this.send(res, 400, invalid(`No such PaymentMethod: '${pm}'`, "resource_missing"));
      if (method?.customer && method.customer !== customer) return this.send(res, 400, invalid("The provided PaymentMethod belongs to a Customer; pass that Customer to use it"));
      if (method && !method.customer && method.spent) return this.send(res, 400, invalid("This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again"));
      if (method && !method.customer) method.spent = true;
      const card = method ?? test;
      // As Stripe: a card asking for authentication is declined `authentication_required` when the
      // cardholder is not there to give it (off_session), else left `requires_action` for them.
      const declineCode = card.declines ? "card_declined" : card.authenticates && p.off_session === "true" ? "authentication_required" : null;
      const declined = declineCode !== null;
      const decline = declineCode !== null && { type: "card_error", code: declineCode, message: declineCode === "card_declined" ? "Your card was declined." : "Your card was declined. This transaction requires authentication." };
      const intent: FakeIntent = {
        id: rid("pi"),
        object: "payment_intent",
        amount: amount + (this.chargesDiverge?.amountOff ?? 0),
        amount_received: 0,
        currency: this.chargesDiverge?.currency ?? String(p.currency),
        status: declined ? "requires_payment_method" : card.authenticates ? "requires_action" : this.mode === "async" ? "processing" : "succeeded",
        payment_method: pm,
        description: typeof p.description === "string" ? p.description : null,
        metadata: typeof p.metadata === "object" ? p.metadata : {},
        customer,
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        last_payment_error: decline || null,
      };
      if (intent.status === "succeeded") intent.amount_received = intent.amount;
      this.intents.set(intent.id, intent);
      this.created++;
      if (intent.status === "succeeded") this.queueEvent("payment_intent.succeeded", intent);
      if (declined) this.queueEvent("payment_intent.payment_failed", intent);
      const status = declined ? 402 : 200;
      const body = JSON.stringify(decline ? { error: { ...decline, payment_intent: intent } } : intent);
      if (typeof key === "string") this.idem.set(key, { params: raw, status, body });
      await this.beforeAnswer?.(intent);
      // As Stripe does: a declined confirmation is HTTP 402 with the PaymentIntent in the error.
      if (decline) return this.send(res, 402, { error: { ...decline, payment_intent: intent } });
      return this.send(res, 200, intent);
    }
    if (req.method === "POST" && path === "/v1/customers") {
      const key = req.headers["idempotency-key"];
      const prev = typeof key === "string" ? this.idem.get(key) : undefined;
      if (prev) return void res.writeHead(prev.status, { "content-type": "application/json", "idempotent-replayed": "true" }).end(prev.body);
      const p = parseForm(raw);
      const cus = { id: rid("cus"), object: "customer", metadata: typeof p.metadata === "object" ? p.metadata : {} };
      this.customers.set(cus.id, cus.metadata);
      if (typeof key === "string") this.idem.set(key, { params: raw, status: 200, body: JSON.stringify(cus) });
      return this.send(res, 200, cus);
    }
    const cusDelete = /^\/v1\/customers\/([A-Za-z0-9_]+)$/.exec(path);
    if (req.method === "DELETE" && cusDelete) {
      if (this.customerDeletes === "unreachable") return void res.destroy();
      const [, id] = cusDelete;
      if (!this.customers.delete(id)) return this.send(res, 404, { error: { type: "invalid_request_error", code: "resource_missing", message: `No such customer: '${id}'` } });
      for (const m of this.paymentMethods.values()) if (m.customer === id) Object.assign(m, { customer: null, spent: true });
      return this.send(res, 200, { id, object: "customer", deleted: true });
    }
    const pmAction = /^\/v1\/payment_methods\/([A-Za-z0-9_]+)\/(attach|detach)$/.exec(path);
    if (req.method === "POST" && pmAction) {
      const [, id, action] = pmAction;
      const customer = String(parseForm(raw).customer ?? "");
      let method = this.paymentMethods.get(id);
      if (action === "attach") {
        if (!this.customers.has(customer)) return this.send(res, 400, { error: { type: "invalid_request_error", param: "customer", code: "resource_missing", message: `No such customer: '${customer}'` } });
        if (!method && TEST_TOKENS[id]) {
          method = { id: rid("pm"), customer: null, ...TEST_TOKENS[id], spent: false };
          this.paymentMethods.set(method.id, method);
        }
        if (!method) return this.send(res, 404, invalid(`No such PaymentMethod: '${id}'`, "resource_missing"));
        if (method.customer && method.customer !== customer) return this.send(res, 400, invalid("The payment method you provided has already been attached to a customer."));
        if (method.spent) return this.send(res, 400, invalid("This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again."));
        method.customer = customer;
      } else {
        if (!method?.customer) return this.send(res, 400, invalid("The payment method you provided is not attached to a customer so detachment is impossible."));
        method.customer = null;
        method.spent = true;
      }
      return this.send(res, 200, { id: method.id, object: "payment_method", type: "card", customer: method.customer, card: { brand: "visa", last4: method.declines ? "0002" : "4242" } });
    }
    if (req.method === "GET" && path === "/v1/payment_intents/search") {
      const m = /^metadata\['intent_id'\]:'([^']*)'$/.exec(url.searchParams.get("query") ?? "");
      if (!m) return this.send(res, 400, { error: { type: "invalid_request_error", param: "query", message: "unsupported search query" } });
      const data = [...this.intents.values()].filter((i) => i.metadata.intent_id === m[1] && !this.unindexed.has(i.id));
      return this.send(res, 200, { object: "search_result", data, has_more: false, next_page: null, url: "/v1/payment_intents/search" });
    }
    if (req.method === "GET" && path === "/v1/payment_intents") {
      const customer = url.searchParams.get("customer");
      const gte = Number(url.searchParams.get("created[gte]") ?? -Infinity);
      const limit = Math.min(Number(url.searchParams.get("limit") ?? 10), 100);
      const after = url.searchParams.get("starting_after");
      const all = [...this.intents.values()].filter((i) => (customer === null || i.customer === customer) && i.created >= gte).reverse();
      const from = after ? all.findIndex((i) => i.id === after) + 1 : 0;
      return this.send(res, 200, { object: "list", data: all.slice(from, from + limit), has_more: from + limit < all.length, url: "/v1/payment_intents" });
    }
    const one = /^\/v1\/payment_intents\/([A-Za-z0-9_]+)$/.exec(path);
    if (req.method === "GET" && one) {
      const i = this.intents.get(one[1]);
      return i ? this.send(res, 200, i) : this.send(res, 404, { error: { type: "invalid_request_error", message: `No such payment_intent: '${one[1]}'` } });
    }
    if (req.method === "POST" && path === "/v1/refunds") {
      if (this.refundRequests === "unreachable") return void res.destroy();
      const key = req.headers["idempotency-key"];
      const prev = typeof key === "string" ? this.idem.get(key) : undefined;
      if (prev && prev.params !== raw)
        return this.send(res, 400, { error: { type: "idempotency_error", message: "Keys for idempotent requests can only be used with the same parameters they were first used with." } });
      if (prev) {
        if (this.refundRequests === "answer-lost") return void res.destroy();
        res.writeHead(prev.status, { "content-type": "application/json", "idempotent-replayed": "true" });
        return void res.end(prev.body);
      }
      const p = parseForm(raw);
      const i = this.intents.get(String(p.payment_intent));
      if (!i) return this.send(res, 404, { error: { type: "invalid_request_error", param: "payment_intent", message: "No such payment_intent" } });
      const amount = p.amount === undefined ? i.amount : Number(p.amount);
      const already = this.refunds.filter((r) => r.payment_intent === i.id && r.status !== "failed" && r.status !== "canceled").reduce((a, r) => a + r.amount, 0);
      if (i.status !== "succeeded" || (this.refusesExcessRefunds && amount > i.amount - already))
        return this.send(res, 400, { error: { type: "invalid_request_error", code: "charge_already_refunded", message: "refund exceeds the charge" } });
      const made = { amount: amount + (this.refundsDiverge?.amountOff ?? 0), currency: this.refundsDiverge?.currency ?? i.currency };
      const refund: FakeRefund = { id: rid("re"), object: "refund", payment_intent: i.id, ...made, status: this.refundStatus, metadata: typeof p.metadata === "object" ? p.metadata : {}, ...(this.refundStatus === "failed" ? { failure_reason: "unknown" } : {}) };
      this.refunds.push(refund);
      this.queueEvent("refund.created", refund);
      if (typeof key === "string") this.idem.set(key, { params: raw, status: 200, body: JSON.stringify(refund) });
      if (this.refundRequests === "answer-lost") return void res.destroy();
      return this.send(res, 200, refund);
    }
    if (req.method === "GET" && path === "/v1/refunds") {
      this.refundListsReceived++;
      if (this.refundListDelayMs) await new Promise((r) => setTimeout(r, this.refundListDelayMs));
      const pi = url.searchParams.get("payment_intent");
      const limit = Math.min(Number(url.searchParams.get("limit") ?? 10), 100);
      const after = url.searchParams.get("starting_after");
      const all = this.refunds.filter((r) => pi === null || r.payment_intent === pi).reverse();
      const from = after ? all.findIndex((r) => r.id === after) + 1 : 0;
      const data = all.slice(from, from + limit).map((r) => ({ ...r }));
      // The list as it stood when asked: the answer, not the reading, is what stalls.
      if (this.refundListHold) await this.refundListHold;
      return this.send(res, 200, { object: "list", data, has_more: from + limit < all.length, url: "/v1/refunds" });
    }
    return this.send(res, 404, { error: { type: "invalid_request_error", message: `Unrecognized request URL (${req.method}: ${path})` } });
  }
}
