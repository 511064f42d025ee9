/**
 * The kill switch reaching the orders already open. The pre-trade check (risk.ts) refuses new orders
 * of a halted or reduce-only user; this sweeper requests the cancel of the open orders the recorded
 * state no longer allows, through the cancel path a user's own cancel takes (the order goes to
 * `pending_cancel` and its `order.pending_cancel` event to om_outbox in one transaction, the
 * trading-engine pulls it from the book and confirms, the state machine decides a race with a fill):
 *   halted       every open order of the user (a global halt: of every user);
 *   reduce_only  the open orders that would not shrink the position, weighed together oldest first
 *                with the arithmetic of the pre-trade check (risk.ts reduceOnlyExcess).
 * The order records why: reject_reason KILL_SWITCH, reject_message the scope, its state and the
 * reason of its last change (kept once the engine confirms the cancel).
 * A deleted account (user-management's tombstone in deleted_users, written in the deleting
 * transaction) is swept as a halted user scope that nothing overrides, its orders marked
 * ACCOUNT_DELETED: nobody can cancel them any more, and a fill would open a position nobody controls.
 * An order stored while the deletion committed is caught by the next pass, as one resting before.
 *
 * Level-triggered from the record in PostgreSQL (risk-analyzer's trading_states, written in the
 * change's transaction), not from the change: every pass compares the open orders with the current
 * state, so a change made while order-management was down, or a pass that failed, is acted on by the
 * next pass, and a pass that finds the cancels already requested does nothing (idempotent; replicas
 * sweeping at once serialize on the orders' row locks and the transition guard). A pass costs one
 * read of the few restricted scopes; the open orders are read only when some scope is restricted,
 * and locked only when some of them must go.
 */
import type { FastifyBaseLogger } from "fastify";
import type { PostgresClient } from "../../kit";
import { D } from "../../trading/decimal";
import { enqueue, type Enqueued } from "../../trading/infra/outbox";
import { nextStatus } from "../../trading/orderState";
import { reduceOnlyExcess } from "../../trading/risk";
import * as data from "./data";
import { orderEvent, pairKey } from "./domain";

/** The reason recorded on an order whose cancel the kill switch requested. */
export const KILL_SWITCH_REASON = "KILL_SWITCH";
/** The reason recorded on an order whose cancel the sweep requested because its account was deleted. */
export const ACCOUNT_DELETED_REASON = "ACCOUNT_DELETED";

export interface KillSwitchCancel {
  order: data.OrderRow;
  state: data.RestrictedScope["state"];
  /** What the order's reject_reason records: KILL_SWITCH_REASON or ACCOUNT_DELETED_REASON. */
  reason: string;
  /** What the order's reject_message records: the scope, its state and why it was set. */
  message: string;
}

const USER_SCOPE = "user:";

/**
 * Which open orders the restricted scopes cancel (no I/O). `orders` are the open orders of the users
 * concerned, oldest first; `positions` the users' positions keyed like pairKey.
 */
export function killSwitchCancels(scopes: data.RestrictedScope[], orders: data.OrderRow[], positions: Map<string, string>): KillSwitchCancel[] {
  const global = scopes.find((s) => s.scope === "global");
  const ofUser = new Map<string, data.RestrictedScope>();
  for (const s of scopes) {
    const userId = s.scope.slice(USER_SCOPE.length);
    // A deleted account's scope wins over the same user's recorded one.
    if (s.scope.startsWith(USER_SCOPE) && (s.deleted || !ofUser.get(userId)?.deleted)) ofUser.set(userId, s);
  }
  // The stricter of the global and the user's own scope; on a tie the user's (its reason is the more specific).
  const effective = (userId: string): data.RestrictedScope | undefined => {
    const u = ofUser.get(userId);
    if (u?.deleted) return u; // nothing the kill switch records lets a deleted account's order stay
    if (!global || !u) return u ?? global;
    return global.state === "halted" && u.state !== "halted" ? global : u;
  };
  const groups = new Map<string, data.OrderRow[]>();
  for (const o of orders) {
    const k = pairKey(o.user_id, o.symbol);
    groups.set(k, [...(groups.get(k) ?? []), o]);
  }
  const out: KillSwitchCancel[] = [];
  for (const [k, group] of groups) {
    const scope = effective(group[0].user_id);
    if (!scope) continue;
    const message = `${scope.scope} ${scope.state}${scope.reason ? `: ${scope.reason}` : ""}`.slice(0, 500);
    const cancellable = (o: data.OrderRow) => nextStatus(o.status, "cancel_request") !== undefined;
    let doomed: data.OrderRow[];
    if (scope.state === "halted") doomed = group.filter(cancellable);
    else {
      const excess = new Set(
        reduceOnlyExcess(
          positions.get(k) ?? "0",
          group.map((o) => ({ id: o.order_id, side: o.side, remaining: D(o.quantity).minus(o.filled_quantity), cancelling: !cancellable(o) })),
        ),
      );
      doomed = group.filter((o) => excess.has(o.order_id));
    }
    const reason = scope.deleted ? ACCOUNT_DELETED_REASON : KILL_SWITCH_REASON;
    for (const order of doomed) out.push({ order, state: scope.state, reason, message });
  }
  return out;
}

export interface KillSwitchSweeperOptions {
  intervalMs: number;
  log: FastifyBaseLogger;
  /** Told of a committed pass's outbox rows (the relay's wake-up). */
  committed: (enqueued: Enqueued) => void;
  /** Told how many cancels a committed pass requested, by state (metrics). */
  requested?: (state: data.RestrictedScope["state"], count: number) => void;
}

export class KillSwitchSweeper {
  private timer?: NodeJS.Timeout;
  private pass?: Promise<unknown>;
  private stopped = false;
  constructor(
    private readonly pg: PostgresClient,
    private readonly opts: KillSwitchSweeperOptions,
  ) {}

  /** One pass: requests the cancels the recorded states call for; answers how many it requested. */
  async sweepOnce(): Promise<number> {
    const scopes = await data.restrictedScopes(this.pg);
    if (scopes.length === 0) return 0;
    const users = scopes.some((s) => s.scope === "global") ? null : scopes.map((s) => s.scope.slice(USER_SCOPE.length));
    // A look without locks first: a restricted user whose open orders may all stay costs no lock.
    const open = await data.openOrdersOf(this.pg, users, false);
    if (open.length === 0) return 0;
    const planned = killSwitchCancels(scopes, open, await data.positionsOf(this.pg, [...new Set(open.map((o) => o.user_id))]));
    if (planned.length === 0) return 0;
    const affected = [...new Set(planned.map((c) => c.order.user_id))];
    let enqueued: Enqueued | undefined;
    const requested = await this.pg.transaction(async (tx) => {
      // Locked first, then the state and the positions read again: a fill of a locked order cannot
      // commit meanwhile, so the position agrees with the orders' filled quantities.
      const orders = await data.openOrdersOf(tx, affected, true);
      const cancels = killSwitchCancels(await data.restrictedScopes(tx), orders, await data.positionsOf(tx, affected));
      const byId = new Map(cancels.map((c) => [c.order.order_id, c]));
      const rows = await data.requestCancels(tx, cancels.map((c) => ({ orderId: c.order.order_id, reason: c.reason, message: c.message })));
      enqueued = await enqueue(tx, "om_outbox", rows.map((r) => orderEvent(r)));
      return rows.map((r) => ({ row: r, state: byId.get(r.order_id)!.state }));
    });
    if (enqueued !== undefined) this.opts.committed(enqueued);
    for (const state of ["halted", "reduce_only"] as const) {
      const n = requested.filter((r) => r.state === state).length;
      if (n > 0) this.opts.requested?.(state, n);
    }
    if (requested.length > 0)
      this.opts.log.warn({ cancels: requested.length, orders: requested.slice(0, 20).map((r) => r.row.order_id) }, "kill switch: cancel requested for open orders the trading state no longer allows");
    return requested.length;
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.pass = this.sweepOnce()
        .catch((err: Error) => this.opts.log.warn({ err: { message: err.message } }, "kill switch sweep failed; retrying at the next pass"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs).unref();
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.pass;
  }
}
