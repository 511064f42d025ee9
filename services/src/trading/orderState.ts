/**
 * The order state machine. Only the transitions listed here are allowed; everything else throws
 * `InvalidTransitionError`. Terminal states have no outgoing transitions.
 *
 *   new ──> accepted ──> partially_filled ──> filled
 *    │         │  │            │  │
 *    │         │  └─> filled   │  └─> cancelled / expired
 *    │         └─> cancelled / expired / rejected (exchange refused after acceptance)
 *    └─> rejected (risk / validation)
 */
export const ORDER_STATUSES = ["new", "accepted", "partially_filled", "filled", "cancelled", "rejected", "expired"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

const TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  new: ["accepted", "rejected"],
  accepted: ["partially_filled", "filled", "cancelled", "expired", "rejected"],
  partially_filled: ["partially_filled", "filled", "cancelled", "expired"],
  filled: [],
  cancelled: [],
  rejected: [],
  expired: [],
};

export const TERMINAL_STATUSES: readonly OrderStatus[] = ORDER_STATUSES.filter((s) => TRANSITIONS[s].length === 0);

export class InvalidTransitionError extends Error {
  constructor(
    readonly from: OrderStatus,
    readonly to: OrderStatus,
  ) {
    super(`invalid order transition ${from} -> ${to}`);
    this.name = "InvalidTransitionError";
  }
}

export function isOrderStatus(s: string): s is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(s);
}
export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}
export function isTerminal(s: OrderStatus): boolean {
  return TRANSITIONS[s].length === 0;
}
/** Returns `to` when allowed, throws otherwise. */
export function transition(from: OrderStatus, to: OrderStatus): OrderStatus {
  if (!canTransition(from, to)) throw new InvalidTransitionError(from, to);
  return to;
}
/** The states from which `to` may be reached (used in SQL `WHERE status IN (...)` guards). */
export function allowedSources(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((s) => TRANSITIONS[s].includes(to));
}
