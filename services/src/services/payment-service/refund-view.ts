/**
 * The API shape of a refund (GET /intents/:id, GET /intents, the refund routes' answer). `amount` is
 * what is booked or held; `requestedAmount` what was asked, when an operator settled the refund at the
 * processor's amount (POST /refund-issues/:id/settle: null otherwise), and `currency` the processor's
 * when it is not the payment's (null: the payment's).
 */
import { toJson } from "../../business/money";
import type { ProcessorRefundStatus, RefundStatus } from "./domain/refund-status";

export interface RefundDetailRow {
  refund_id: string;
  intent_id: string;
  status: RefundStatus;
  amount: string;
  requested_amount: string | null;
  currency: string | null;
  failure_code: string | null;
  processor_refund_id: string | null;
  reason: string | null;
  processor_status: ProcessorRefundStatus | null;
  created_at: Date;
  updated_at: Date;
}

/** The columns refundView reads. */
export const REFUND_DETAIL = "refund_id, intent_id, status, amount, requested_amount::text, currency, failure_code, processor_refund_id, reason, processor_status, created_at, updated_at";

export function refundView(r: RefundDetailRow) {
  return {
    id: r.refund_id,
    amount: toJson(BigInt(r.amount)),
    requestedAmount: r.requested_amount === null ? null : toJson(BigInt(r.requested_amount)),
    currency: r.currency,
    status: r.status,
    processorStatus: r.processor_status,
    failureCode: r.failure_code,
    reason: r.reason,
    processorRefundId: r.processor_refund_id,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}
export type RefundView = ReturnType<typeof refundView>;
