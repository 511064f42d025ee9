/**
 * The deadline of a processor call (PAYMENT_CHARGE_DEADLINE_MS for a charge, processor.ts): one bound
 * on the whole call, the `stripe` SDK's retries inside it, enforced in the SDK's own HTTP client.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import Stripe from "stripe";

/**
 * A charge's processor call that did not end by its deadline: its outcome is unknown (an attempt the
 * processor received may still be made there), so the intent stays `created` for reconciliation.
 */
export class ChargeDeadlineError extends Error {
  constructor(deadlineMs: number) {
    super(`no answer from the card processor within the charge's deadline (${deadlineMs} ms, every attempt included)`);
    this.name = "ChargeDeadlineError";
  }
}

/**
 * A processor call other than a charge that did not end by the deadline its caller gave it (a customer's
 * delete inside its claim's lease: deleted-customers.ts): its outcome is unknown, and no attempt of it
 * is under way on our side any more.
 */
export class CallDeadlineError extends Error {
  constructor(what: string, deadlineMs: number) {
    super(`no answer from the card processor to ${what} within its deadline (${deadlineMs} ms, every attempt included)`);
    this.name = "CallDeadlineError";
  }
}

/**
 * The deadline (performance.now(): in-process, so a wall-clock step neither stretches nor cuts it) of the
 * processor call running in this async context, if it has one.
 */
const callDeadline = new AsyncLocalStorage<number>();

/**
 * The SDK's own HTTP client, each attempt of a call with a deadline (CardProcessor.createAndConfirm, deleteCustomer)
 * cut at it and none sent after it. The SDK retries inside the call (timeouts, connection errors,
 * 409 and 5xx: the same idempotency key) and sleeps up to 5 s between attempts, so its worst case is
 * 3 x PAYMENT_PROCESSOR_TIMEOUT_MS and 10 s of sleeps (70 s by default), past the gateway's 30 s: the
 * client got a 504 for a charge the processor made. The deadline is read from the call's async
 * context (the SDK's retries run in it); a call without one (refunds, lookups) passes unchanged.
 */
export class DeadlineHttpClient extends Stripe.HttpClient {
  private readonly inner = Stripe.createNodeHttpClient();

  override getClientName(): string {
    return this.inner.getClientName();
  }

  override makeRequest(...[host, port, path, method, headers, body, protocol, timeout]: Parameters<Stripe.HttpClient["makeRequest"]>): ReturnType<Stripe.HttpClient["makeRequest"]> {
    const deadline = callDeadline.getStore();
    if (deadline === undefined) return this.inner.makeRequest(host, port, path, method, headers, body, protocol, timeout);
    const left = deadline - performance.now();
    // Refused before anything is sent: the SDK takes it for a connection error (no request reached the processor).
    if (left <= 0) return Promise.reject(Object.assign(new Error("the call's deadline passed before this attempt"), { code: "DEADLINE_PASSED" }));
    return this.inner.makeRequest(host, port, path, method, headers, body, protocol, Math.min(timeout, left));
  }
}

/** `call` run with a deadline `ms` from now: its attempts cut at it (DeadlineHttpClient), and answered `passed()` (ChargeDeadlineError unless given) then at the latest. */
export function withinDeadline<T>(ms: number, call: () => Promise<T>, passed: () => Error = () => new ChargeDeadlineError(ms)): Promise<T> {
  const running = callDeadline.run(performance.now() + ms, call);
  let timer: NodeJS.Timeout | undefined;
  const lost = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(passed()), ms);
  });
  // Lost to the deadline, the SDK may still be sleeping before an attempt it is refused: its end is nobody's.
  running.catch(() => undefined);
  return Promise.race([running, lost]).finally(() => clearTimeout(timer));
}
