/**
 * The order state machine, as one table keyed by (state, event). A pair absent from the table is
 * not allowed (`nextStatus` answers undefined, `applyEvent` throws `InvalidTransitionError`).
 * Terminal states have no row.
 *
 *   new ──accept──> accepted ──partial_fill──> partially_filled ──fill──> filled
 *    │                 │                              │
 *    └─risk_reject─> rejected                         │
 *                      ├──cancel_request──> pending_cancel <──cancel_request──┘
 *                      └──expire / exchange_reject──> expired / rejected
 *   pending_cancel ──cancel_confirm──> cancelled   (the engine pulled the rest from the book)
 *   pending_cancel ──fill──> filled                (a fill raced the cancel and won)
 *   pending_cancel ──partial_fill──> pending_cancel (a racing partial fill is applied; the cancel
 *                                                    then covers only the rest)
 *
 * A cancel is only a request until the engine confirms it: writing `cancelled` at request time
 * would let a fill that was already on its way land on a cancelled order.
 */
export const ORDER_STATUSES = ["new", "accepted", "partially_filled", "pending_cancel", "filled", "cancelled", "rejected", "expired"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const ORDER_EVENTS = ["accept", "risk_reject", "partial_fill", "fill", "cancel_request", "cancel_confirm", "expire", "exchange_reject"] as const;
export type OrderEvent = (typeof ORDER_EVENTS)[number];

const TRANSITIONS: Readonly<Record<OrderStatus, Readonly<Partial<Record<OrderEvent, OrderStatus>>>>> = {
  new: { accept: "accepted", risk_reject: "rejected" },
  accepted: { partial_fill: "partially_filled", fill: "filled", cancel_request: "pending_cancel", expire: "expired", exchange_reject: "rejected" },
  partially_filled: { partial_fill: "partially_filled", fill: "filled", cancel_request: "pending_cancel", expire: "expired" },
  pending_cancel: { partial_fill: "pending_cancel", fill: "filled", cancel_confirm: "cancelled", expire: "expired", exchange_reject: "rejected" },
  filled: {},
  cancelled: {},
  rejected: {},
  expired: {},
};

export class InvalidTransitionError extends Error {
  constructor(
    readonly from: OrderStatus,
    readonly event: OrderEvent,
  ) {
    super(`order in state ${from} does not accept event ${event}`);
    this.name = "InvalidTransitionError";
  }
}

export function isOrderStatus(s: string): s is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(s);
}
/** The state `event` leads to from `from`; undefined when the pair is not in the table. */
export function nextStatus(from: OrderStatus, event: OrderEvent): OrderStatus | undefined {
  return TRANSITIONS[from][event];
}
/** The state `event` leads to; throws when the pair is not allowed. */
export function applyEvent(from: OrderStatus, event: OrderEvent): OrderStatus {
  const to = nextStatus(from, event);
  if (to === undefined) throw new InvalidTransitionError(from, event);
  return to;
}
export function isTerminal(s: OrderStatus): boolean {
  return Object.keys(TRANSITIONS[s]).length === 0;
}
export const TERMINAL_STATUSES: readonly OrderStatus[] = ORDER_STATUSES.filter(isTerminal);
/** States in which the order may still execute (its remaining quantity is exposure). */
export const OPEN_STATUSES: readonly OrderStatus[] = ["accepted", "partially_filled", "pending_cancel"];
