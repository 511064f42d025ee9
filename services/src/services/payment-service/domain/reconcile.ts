/**
 * Reconciliation: compares our intents with the processor's PaymentIntents (found by the
 * `intent_id` metadata we send) and decides, without I/O, what to do with each. It settles what a
 * crash or a lost webhook left open and reports what it must not fix alone.
 */
import { canSettle, type IntentStatus, statusFromProcessor } from "./intents";

export interface LocalIntent {
  id: string;
  status: IntentStatus;
  amount: bigint;
  currency: string;
  createdAtMs: number;
  /** Its failure code (a failed one: never_reached_processor when failed by our inference, intents.ts canSettle). */
  failureCode?: string | null;
}

export interface RemoteIntent {
  id: string;
  status: string;
  amount: bigint;
  currency: string;
  fee: bigint;
}

export type ReconcileAction =
  | { kind: "settle"; intentId: string; remote: RemoteIntent; to: IntentStatus }
  | { kind: "never_reached_processor"; intentId: string }
  /** Not closed: its create request was being sent at that moment (payments.ts reconcile). */
  | { kind: "in_flight"; intentId: string }
  | { kind: "mismatch"; intentId: string; reason: string }
  /** The processor refused to look it up (a client error): left to a later pass (payments.ts reconcile). */
  | { kind: "lookup_refused"; intentId: string }
  | { kind: "none"; intentId: string };

/**
 * `remote` is undefined when the processor has no PaymentIntent with our intent id. An intent that
 * is still `created` after `closeAfterMs` and unknown to the processor never reached it. `closeAfterMs`
 * is at least the in-flight bound of one processor request (refund-settlement.ts inFlightBoundMs: every
 * attempt, the SDK's retry sleeps, the processor's grace): before it, the create may still be on its
 * way and be charged after (payments.ts also skips an intent whose create is being sent right now, and
 * never sends one that was closed). Should the processor report it all the same, the report is applied
 * (intents.ts canSettle): `settle` from failed.
 */
export function reconcileOne(local: LocalIntent, remote: RemoteIntent | undefined, nowMs: number, closeAfterMs: number): ReconcileAction {
  if (!remote) {
    if (local.status === "created" && nowMs - local.createdAtMs >= closeAfterMs) return { kind: "never_reached_processor", intentId: local.id };
    if (local.status === "succeeded") return { kind: "mismatch", intentId: local.id, reason: "succeeded here but unknown to the processor" };
    return { kind: "none", intentId: local.id };
  }
  if (remote.amount !== local.amount || remote.currency !== local.currency) {
    // Canceled there, it moved no money whatever its amount: closed as canceled (an operator's cancel at the
    // processor of a charge held for a mismatch ends it: payment.failed, and billing's dunning goes on).
    if (remote.status === "canceled" && canSettle(local, "canceled")) return { kind: "settle", intentId: local.id, remote, to: "canceled" };
    return { kind: "mismatch", intentId: local.id, reason: `processor has ${remote.amount} ${remote.currency}, we have ${local.amount} ${local.currency}` };
  }
  let to: IntentStatus;
  try {
    to = statusFromProcessor(remote.status);
  } catch (err) {
    return { kind: "mismatch", intentId: local.id, reason: (err as Error).message };
  }
  if (to === local.status) return { kind: "none", intentId: local.id };
  if (canSettle(local, to)) return { kind: "settle", intentId: local.id, remote, to };
  return { kind: "mismatch", intentId: local.id, reason: `we have ${local.status}, the processor has ${remote.status}` };
}
