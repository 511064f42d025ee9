/**
 * The kill switch's audited writer: the only code that changes the trading state
 * (trading/tradingState.ts) order-management enforces and ai-orchestrator reads.
 *
 * Record and copy. PostgreSQL holds the record (`trading_states`, the append-only
 * `trading_state_changes`); Dragonfly holds the copy the pre-trade check reads. A change runs in one
 * PostgreSQL transaction: lock the scope's row, record the change, write the Dragonfly key, commit.
 *   - Dragonfly refuses the write: the transaction rolls back, the caller gets 503
 *     DATASTORE_UNAVAILABLE (the platform's outage answer: no datastore named), nothing changed.
 *   - The commit fails after the key was written (or a timed-out write landed after all): the copy is
 *     ahead of the record. The reconciler puts the record back into Dragonfly (at its next pass, or at
 *     once when the scope is read), and the caller, who got an error, knows the change did not happen.
 *   - Dragonfly restarts empty, or someone writes a key by hand: the reconciler re-applies the record.
 * The key is written while the row lock is held, so two concurrent changes of a scope reach Dragonfly
 * in the order they commit, and the audit's `from` is always the state the change replaced.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Redis } from "ioredis";
import { datastoreUnavailable, HttpError, type Identity, type PostgresClient } from "../../kit";
import { parseTradingState, stricter, TRADING_STATE_KEYS, type TradingState } from "../../trading/tradingState";
import * as data from "./kill-switch-data";

export type Scope = { kind: "global" } | { kind: "user"; userId: string };

export const scopeName = (s: Scope) => (s.kind === "global" ? "global" : `user:${s.userId}`);
const keyOf = (s: Scope) => (s.kind === "global" ? TRADING_STATE_KEYS.global : TRADING_STATE_KEYS.user(s.userId));
const keyOfName = (name: string) => (name === "global" ? TRADING_STATE_KEYS.global : TRADING_STATE_KEYS.user(name.slice("user:".length)));

/** A scope as recorded and as enforced, with the change that set it (null: never set, `active`). */
export interface ScopeView {
  scope: string;
  userId: string | null;
  state: TradingState;
  enforced: TradingState;
  lastChange: data.ChangeRow | null;
}


/** The copy agrees with the record: the same value, or no key where the record says `active`. */
const agrees = (recorded: TradingState, key: string | null) => key === recorded || (key === null && recorded === "active");

export class KillSwitch {
  constructor(
    private readonly pg: PostgresClient,
    private readonly redis: () => Redis | undefined,
    private readonly log: FastifyBaseLogger,
  ) {}

  private dragonfly(): Redis {
    const r = this.redis();
    if (!r) {
      this.log.warn("the kill switch was asked for, but Dragonfly is disabled in this stack");
      throw new HttpError(503, "TRADING_STATE_UNAVAILABLE", "The kill switch is not available in this deployment");
    }
    return r;
  }

  /**
   * The platform's answer to an outage (no datastore named: the body is the client's, the names
   * and the driver's message are for the log), logged here with what became of the request.
   */
  private unavailable(err: unknown, outcome: string): HttpError {
    this.log.error({ err: { message: err instanceof Error ? err.message : String(err) } }, `Dragonfly, which holds the enforced trading state, did not answer: ${outcome}`);
    return datastoreUnavailable(outcome);
  }

  /**
   * Sets a scope's state, recorded with who asked and why (see the module comment for failures). The
   * state it already has is a no-op answered like a change (the scope, its last change unchanged): no
   * "from X to X" audit row, as refused admin actions are not audited either. Compared under the
   * scope's lock, so of two admins setting one state at once, one records the change and the other
   * finds it made. The key is written either way: the copy agrees with the record once this answers.
   */
  async change(scope: Scope, to: TradingState, reason: string, by: Identity): Promise<ScopeView> {
    const redis = this.dragonfly();
    if (scope.kind === "user" && !(await data.userExists(this.pg, scope.userId))) throw new HttpError(404, "NOT_FOUND", "no such user", "userId");
    const name = scopeName(scope);
    const { from, change } = await this.pg.transaction(async (tx) => {
      const from = await data.lockScope(tx, name);
      const change = from === to
        ? ((await data.lastChangeOf(tx, name)) ?? null)
        : await data.recordChange(tx, from, { scope: name, userId: scope.kind === "user" ? scope.userId : null, to, reason, changedBy: by.userId, authMethod: by.authMethod });
      try {
        await redis.set(keyOf(scope), to);
      } catch (err) {
        throw this.unavailable(err, from === to ? "the trading state was not re-applied" : "the trading state was not changed");
      }
      return { from, change };
    });
    if (from === to) this.log.info({ scope: name, state: to, by: by.userId }, "trading state set to the state it had: nothing recorded");
    else this.log.warn({ scope: name, from, to, by: by.userId, changeId: change?.id }, "trading state changed");
    return { scope: name, userId: scope.kind === "user" ? scope.userId : null, state: to, enforced: to, lastChange: change };
  }

  /** A scope as recorded and enforced; a copy that disagrees with the record is repaired first. */
  async read(scope: Scope): Promise<ScopeView> {
    const redis = this.dragonfly();
    const name = scopeName(scope);
    const [recorded, lastChange] = await Promise.all([data.recordedStates(this.pg, [name]), data.lastChangeOf(this.pg, name)]);
    let key: string | null;
    try {
      key = await redis.get(keyOf(scope));
    } catch (err) {
      throw this.unavailable(err, "the trading state cannot be read");
    }
    const state = recorded.get(name);
    if (state !== undefined && !agrees(state, key)) {
      await this.repair([name]).catch((err: unknown) => {
        throw err instanceof HttpError ? err : this.unavailable(err, "the trading state cannot be repaired");
      });
      key = state;
    }
    return { scope: name, userId: scope.kind === "user" ? scope.userId : null, state: state ?? "active", enforced: parseTradingState(key), lastChange: lastChange ?? null };
  }

  /** What a user's orders are subject to: the stricter of the global and their own enforced state. */
  async effectiveFor(userId: string): Promise<{ effective: TradingState; global: ScopeView; user: ScopeView }> {
    const [global, user] = await Promise.all([this.read({ kind: "global" }), this.read({ kind: "user", userId })]);
    return { effective: stricter(global.enforced, user.enforced), global, user };
  }

  history(scope: Scope, limit: number, before: string | null): Promise<data.ChangeRow[]> {
    return data.changesOf(this.pg, scopeName(scope), limit, before);
  }

  /**
   * Puts the record of these scopes back into Dragonfly, their rows locked for share meanwhile (a
   * concurrent change waits, so a stale record is never written over a newer change). Returns the
   * scopes it rewrote.
   */
  async repair(names: string[]): Promise<string[]> {
    const redis = this.dragonfly();
    return this.pg.transaction(async (tx) => {
      const recorded = await data.recordedStates(tx, names, true);
      const scopes = [...recorded.keys()];
      if (scopes.length === 0) return [];
      const keys = await redis.mget(scopes.map(keyOfName));
      const fixed = scopes.filter((s, i) => !agrees(recorded.get(s)!, keys[i]));
      if (fixed.length === 0) return [];
      const tx2 = redis.multi();
      for (const s of fixed) tx2.set(keyOfName(s), recorded.get(s)!);
      await tx2.exec();
      this.log.warn({ scopes: fixed.slice(0, 20), count: fixed.length }, "trading state in Dragonfly differed from the record; record re-applied");
      return fixed;
    });
  }

  /** One pass of the reconciler: compares every recorded scope with Dragonfly, repairs those that differ. */
  async reconcile(): Promise<string[]> {
    const redis = this.dragonfly();
    const recorded = await data.recordedStates(this.pg, "all");
    if (recorded.size === 0) return [];
    const scopes = [...recorded.keys()];
    const keys = await redis.mget(scopes.map(keyOfName));
    const differing = scopes.filter((s, i) => !agrees(recorded.get(s)!, keys[i]));
    return differing.length === 0 ? [] : this.repair(differing);
  }
}
