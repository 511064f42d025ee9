/**
 * The card processor adapter: Stripe's API through the official `stripe` SDK (PaymentIntents,
 * Refunds, signed webhooks). PAYMENT_PROCESSOR_URL points it elsewhere (tests run a local fake
 * speaking the same HTTP API). Only processor tokens (`pm_...`) cross it; no card data.
 * Every create carries our intent id as the idempotency key and as metadata, so a retry after a
 * crash returns the same PaymentIntent and reconciliation can find it by our id.
 */
import Stripe from "stripe";
import type { Currency } from "../../business/money";
import { inFlightBoundMs } from "./domain/refund-settlement";
import { CallDeadlineError, DeadlineHttpClient, withinDeadline } from "./processor-deadline";
import { eventOf, type ProcessorEvent, type ProcessorIntent, type ProcessorRefund, toIntent, toRefund } from "./processor-records";

export type { ProcessorEvent, ProcessorIntent, ProcessorRefund } from "./processor-records";

/** Retries of one request by the SDK (same idempotency key: safe). */
export const MAX_NETWORK_RETRIES = 2;
/** The SDK's longest sleep between two attempts (stripe-node's MAX_NETWORK_RETRY_DELAY_SEC, 5 s). */
export const MAX_RETRY_DELAY_MS = 5_000;

export interface ProcessorConfig {
  apiKey: string;
  webhookSecret: string;
  /** Base URL, e.g. https://api.stripe.com (default) or http://127.0.0.1:<port>. */
  url: string;
  webhookToleranceS: number;
  /** Bound on one attempt of any request (PAYMENT_PROCESSOR_TIMEOUT_MS). */
  timeoutMs: number;
  /** Bound on a charge's whole call, every attempt and the retry sleeps (PAYMENT_CHARGE_DEADLINE_MS). */
  chargeDeadlineMs: number;
}

export class WebhookSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookSignatureError";
  }
}

/** A correctly signed webhook whose body is no event object (`null`, an array, a number). */
export class WebhookPayloadError extends Error {
  override readonly name = "WebhookPayloadError";
}

/** How far before our row's creation the processor's list of a customer's intents is read (clock skew). */
const LIST_CLOCK_MARGIN_S = 600;

export class CardProcessor {
  private readonly stripe: Stripe;
  readonly name = "stripe";
  constructor(private readonly cfg: ProcessorConfig) {
    const u = new URL(cfg.url);
    this.stripe = new Stripe(cfg.apiKey, {
      host: u.hostname,
      port: u.port || (u.protocol === "https:" ? 443 : 80),
      protocol: u.protocol === "https:" ? "https" : "http",
      timeout: cfg.timeoutMs,
      maxNetworkRetries: MAX_NETWORK_RETRIES,
      httpClient: new DeadlineHttpClient(),
      telemetry: false,
    });
  }

  /** The user's processor customer, created once per user (the user id is the idempotency key). */
  async createCustomer(userId: string): Promise<string> {
    const c = await this.stripe.customers.create({ metadata: { user_id: userId } }, { idempotencyKey: `customer-${userId}` });
    return c.id;
  }

  /**
   * Attaches a card token to a customer. The processor refuses a token attached to another customer
   * (or already used without one); the answer's id is the one to charge (a test token such as
   * `pm_card_visa` becomes a new method of its own).
   */
  async attach(paymentMethod: string, customerId: string): Promise<{ id: string; brand: string | null; last4: string | null }> {
    const pm = await this.stripe.paymentMethods.attach(paymentMethod, { customer: customerId });
    return { id: pm.id, brand: pm.card?.brand ?? null, last4: pm.card?.last4 ?? null };
  }

  async detach(paymentMethod: string): Promise<void> {
    await this.stripe.paymentMethods.detach(paymentMethod);
  }

  /** The longest one request other than a charge takes on our side: every attempt at PAYMENT_PROCESSOR_TIMEOUT_MS with the SDK's retry sleeps. */
  get requestBoundMs(): number { return inFlightBoundMs({ timeoutMs: this.cfg.timeoutMs, maxNetworkRetries: MAX_NETWORK_RETRIES, maxRetryDelayMs: MAX_RETRY_DELAY_MS, processorGraceMs: 0 }); }
  /**
   * Deletes a customer (the processor detaches its cards and never charges them again), the whole call
   * (the SDK's retries inside it) ended `deadlineMs` after it began: an attempt is cut there and none is
   * sent after it (CallDeadlineError, the outcome unknown). deleted-customers.ts gives what is left of the
   * call's part of its claim's lease, so no attempt of it is under way once another pass may claim the customer.
   */
  async deleteCustomer(customerId: string, deadlineMs: number): Promise<void> {
    await withinDeadline(deadlineMs, () => this.stripe.customers.del(customerId), () => new CallDeadlineError("a customer's delete", deadlineMs));
  }

  /**
   * Charges a method saved to `customerId` (the processor refuses a method of another customer), the
   * whole call (the SDK's retries inside it) bounded by PAYMENT_CHARGE_DEADLINE_MS: past it
   * ChargeDeadlineError (./processor-deadline.ts), the outcome unknown (payments.ts leaves the intent `created`).
   */
  async createAndConfirm(p: { intentId: string; userId: string; customerId: string; amount: bigint; currency: Currency; paymentMethod: string; description: string | null }): Promise<ProcessorIntent> {
    const pi = await withinDeadline(this.cfg.chargeDeadlineMs, () => this.stripe.paymentIntents
      .create(
      {
        amount: Number(p.amount),
        currency: p.currency,
        customer: p.customerId,
        payment_method: p.paymentMethod,
        confirm: true,
        // Server-side charges of saved cards: no redirect-based methods, and the cardholder is not there
        // to authenticate (our API hands no 3D Secure challenge on): a card that asks for it is declined
        // at once, authentication_required. Without it the PaymentIntent waited in requires_action for
        // ever, our payment `processing`, billing's invoice neither paid nor failed into dunning.
        off_session: true,
        automatic_payment_methods: { enabled: true, allow_redirects: "never" },
        ...(p.description ? { description: p.description } : {}),
        metadata: { intent_id: p.intentId, user_id: p.userId },
      },
      { idempotencyKey: `intent-${p.intentId}` },
      )
      .catch((err: unknown) => {
        // A decline is an answer, not a failure: HTTP 402 carrying the PaymentIntent.
        if (err instanceof Stripe.errors.StripeCardError && err.payment_intent) return err.payment_intent;
        throw err;
      }));
    return toIntent(pi);
  }

  /**
   * The processor's intent created for our intent id, if any. With the payer's customer (every charge
   * since saved payment methods has one), Stripe's "List all PaymentIntents" of that customer created
   * since a little before our row, read page by page: a list, not a search. Stripe's search is
   * eventually consistent (indexed within about a minute, later during an outage, which is when an
   * answer gets lost): a charged intent not indexed yet was taken for one that never reached the
   * processor, and reconciliation failed it for good. The search is still asked when the list has no
   * such intent (one charged without a customer, before migration 0415, or of a customer deleted since:
   * deleted-customers.ts). With `processorIntentId` (ours recorded it) that PaymentIntent is read first.
   */
  async findByIntentId(intentId: string, payer?: { customerId: string; createdAtMs: number }, processorIntentId?: string | null): Promise<ProcessorIntent | undefined> {
    // Its processor id known (an answer or a webhook recorded it): that PaymentIntent, read by id.
    if (processorIntentId) {
      const pi = await this.stripe.paymentIntents.retrieve(processorIntentId);
      if (pi.metadata?.intent_id === intentId) return toIntent(pi);
    }
    if (payer) {
      // Our row is committed before the processor is asked; a few minutes' margin for the two clocks.
      const since = Math.floor(payer.createdAtMs / 1000) - LIST_CLOCK_MARGIN_S;
      for await (const pi of this.stripe.paymentIntents.list({ customer: payer.customerId, created: { gte: since }, limit: 100 }))
        if (pi.metadata?.intent_id === intentId) return toIntent(pi);
    }
    const r = await this.stripe.paymentIntents.search({ query: `metadata['intent_id']:'${intentId.replace(/[^A-Za-z0-9-]/g, "")}'` });
    return r.data[0] ? toIntent(r.data[0]) : undefined;
  }

  /** The processor's refund as it answered (a card refund is often `succeeded` at once, other methods `pending`). */
  async refund(p: { processorIntentId: string; amount: bigint; refundId: string }): Promise<ProcessorRefund> {
    const r = await this.stripe.refunds.create(
      { payment_intent: p.processorIntentId, amount: Number(p.amount), metadata: { refund_id: p.refundId } },
      { idempotencyKey: `refund-${p.refundId}` },
    );
    const ours = toRefund(r);
    if (!ours) throw new Error("the processor answered a refund without an id");
    return ours;
  }

  /**
   * The processor's refund of `processorIntentId` made for our refund id (the `refund_id` metadata
   * sent with it), or with the processor refund id we recorded (a refund made at the processor carries
   * none of our metadata), if any: Stripe's "List all refunds" (`GET /v1/refunds?payment_intent=`), read
   * page by page. A list, not a search: Stripe's search is eventually consistent, the list is not.
   */
  async findRefund(processorIntentId: string, ours: { refundId: string; processorRefundId: string | null }): Promise<ProcessorRefund | undefined> {
    for await (const r of this.stripe.refunds.list({ payment_intent: processorIntentId, limit: 100 }))
      if (r.metadata?.refund_id === ours.refundId || r.id === ours.processorRefundId) return toRefund(r);
    return undefined;
  }

  /** Verifies signature and timestamp tolerance, past and future (Stripe's scheme), then parses the event. */
  parseWebhook(rawBody: string, signatureHeader: string | undefined, nowMs = Date.now()): ProcessorEvent {
    if (!signatureHeader) throw new WebhookSignatureError("missing Stripe-Signature header");
    let ev: Stripe.Event;
    try {
      ev = this.stripe.webhooks.constructEvent(rawBody, signatureHeader, this.cfg.webhookSecret, this.cfg.webhookToleranceS, undefined, nowMs);
    } catch (err) {
      throw new WebhookSignatureError((err as Error).message.split("\n")[0]);
    }
    // The SDK parses whatever JSON was signed: `null` or an array passed it, and reading its fields threw (a 500).
    if (ev === null || typeof ev !== "object" || Array.isArray(ev)) throw new WebhookPayloadError("the body is not an event object");
    // The SDK's tolerance bounds only the age: a timestamp ahead of our clock passed whatever its
    // distance, so a signed event could be held back and still be taken long after. The same `t` the
    // SDK verified (its parsing: the last `t=` item) may be at most the tolerance ahead of now.
    const signedAt = signatureHeader.split(",").reduce((t, item) => (item.split("=")[0] === "t" ? parseInt(item.split("=")[1], 10) : t), -1);
    if (signedAt > nowMs / 1000 + this.cfg.webhookToleranceS) throw new WebhookSignatureError(`timestamp more than ${this.cfg.webhookToleranceS} s in the future`);
    return eventOf(ev);
  }

  /**
   * The failure code of a refusal, in the processor's own vocabulary: its error code (card_declined,
   * resource_missing...), else its error type (invalid_request_error...). Never the SDK's class name
   * (`type` on the SDK's error: StripeInvalidRequestError), which a refusal without a code showed the
   * payer as the payment's failureCode and in its notice.
   */
  failureCodeOf(err: Stripe.errors.StripeError): string {
    return err.code ?? err.rawType ?? "processor_refused";
  }

  isClientError(err: unknown): err is Stripe.errors.StripeError {
    return err instanceof Stripe.errors.StripeCardError || err instanceof Stripe.errors.StripeInvalidRequestError || err instanceof Stripe.errors.StripeIdempotencyError;
  }
}
