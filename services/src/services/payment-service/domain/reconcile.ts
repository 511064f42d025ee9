/**
 * Reconciliation: compares our intents with the processor's PaymentIntents (found by the
 * `intent_id` metadata we send) and decides, without I/O, what to do with each. It settles what a
 * crash or a lost webhook left open and reports what it must not fix alone.
 */
import { canTransition, type IntentStatus, statusFromProcessor } from "./intents";

export interface LocalIntent {
  id: string;
  status: IntentStatus;
  amount: bigint;
  currency: string;
  createdAtMs: number;
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
  | { kind: "mismatch"; intentId: string; reason: string }
  | { kind: "none"; intentId: string };

/**
 * `remote` is undefined when the processor has no PaymentIntent with our intent id. An intent that
 * is still `created` after `graceMs` and unknown to the processor never reached it: the processor
 * cannot charge it later either, because we never re-send an intent that reconciliation closed.
 */
export function reconcileOne(local: LocalIntent, remote: RemoteIntent | undefined, nowMs: number, graceMs: number): ReconcileAction {
  if (!remote) {
    if (local.status === "created" && nowMs - local.createdAtMs >= graceMs) return { kind: "never_reached_processor", intentId: local.id };
    if (local.status === "succeeded") return { kind: "mismatch", intentId: local.id, reason: "succeeded here but unknown to the processor" };
    return { kind: "none", intentId: local.id };
  }
  if (remote.amount !== local.amount || remote.currency !== local.currency)
    return { kind: "mismatch", intentId: local.id, reason: `processor has ${remote.amount} ${remote.currency}, we have ${local.amount} ${local.currency}` };
  let to: IntentStatus;
  try {
    to = statusFromProcessor(remote.status);
  } catch (err) {
    return { kind: "mismatch", intentId: local.id, reason: (err as Error).message };
  }
  if (to === local.status) return { kind: "none", intentId: local.id };
  if (canTransition(local.status, to)) return { kind: "settle", intentId: local.id, remote, to };
  return { kind: "mismatch", intentId: local.id, reason: `we have ${local.status}, the processor has ${remote.status}` };
}
