/**
 * The kill switch over HTTP (behind the gateway at /api/risk/trading-state...). Changing a state and
 * reading another scope's record are for admins (a session or an admin API key: an automated risk
 * monitor may need to halt); every change is recorded with who, when, from, to and why
 * (kill-switch.ts). A user reads their own effective state.
 *   GET /trading-state                          the caller's: effective, global and own (any user)
 *   GET /trading-state/global                   admin: the platform's state and its last change
 *   PUT /trading-state/global                   admin: { state, reason } (the state it has: 200, nothing recorded)
 *   GET /trading-state/global/history           admin: changes, newest first (?limit, ?before=<id>)
 *   GET /trading-state/users/:userId            admin: one user's state
 *   PUT /trading-state/users/:userId            admin: { state, reason } (404 for an unknown user)
 *   GET /trading-state/users/:userId/history    admin (the audit outlives a deleted account)
 */
import { DisplayText, Nullable, pageOf, requireIdentity, ResponseObject, Type, UserIdSchema, type App } from "../../kit";
import { TRADING_STATES } from "../../trading/tradingState";
import type { ChangeRow } from "./kill-switch-data";
import type { KillSwitch, Scope, ScopeView } from "./kill-switch";

const State = Type.Union(TRADING_STATES.map((s) => Type.Literal(s)));
// Printable text with at least one visible character (kit display-text.ts: control characters, C1's
// CSI and line separators would forge audit lines, a direction override would show another reason).
const Reason = DisplayText({ minLength: 3, maxLength: 500 });
const ChangeBody = Type.Object({ state: State, reason: Reason }, { additionalProperties: false });
// Canonical only (kit UserIdSchema; another spelling is a 400 naming userId, where it used to be
// lower-cased here): the scope names the Dragonfly key and trading_states row every reader looks up.
const UserParams = Type.Object({ userId: UserIdSchema });
const HistoryQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  // Below 10^18: always a valid bigint.
  before: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,17}$" })),
});

// Responses (OpenAPI; unnamed fields are kept).
const StateOut = Type.String({ enum: [...TRADING_STATES] });
const ChangeOut = ResponseObject({
  id: Type.String(),
  scope: Type.String(),
  userId: Nullable(Type.String()),
  from: StateOut,
  to: StateOut,
  reason: Type.String(),
  changedBy: Type.String(),
  authMethod: Type.String(),
  changedAt: Type.String(),
});
const ScopeOut = ResponseObject(
  { scope: Type.String(), userId: Nullable(Type.String()), state: StateOut, enforced: StateOut, lastChange: Type.Union([ChangeOut, Type.Null()]) },
  { description: "`state` as recorded, `enforced` as the pre-trade check applies it" },
);
const HistoryOut = ResponseObject({ changes: Type.Array(ChangeOut), nextBefore: Nullable(Type.String({ description: "the next page: ?before=<this>; null on the last page" })) });
const OwnScope = ResponseObject({ state: StateOut, reason: Nullable(Type.String()), since: Nullable(Type.String()) });
const OwnOut = ResponseObject({ userId: Type.String(), effective: StateOut, global: OwnScope, user: OwnScope });

const changeOut = (c: ChangeRow) => ({
  id: c.id, scope: c.scope, userId: c.user_id, from: c.from_state, to: c.to_state, reason: c.reason,
  changedBy: c.changed_by, authMethod: c.auth_method, changedAt: c.changed_at.toISOString(),
});
const scopeOut = (v: ScopeView) => ({ ...v, lastChange: v.lastChange ? changeOut(v.lastChange) : null });
/** What a trader sees of a scope: what applies to them and why, not who set it. */
const ownScope = (v: ScopeView) => ({ state: v.enforced, reason: v.lastChange?.reason ?? null, since: v.lastChange?.changed_at.toISOString() ?? null });

export function registerKillSwitchRoutes(app: App, killSwitch: KillSwitch): void {
  // Both spellings are canonical already: a route's userId by UserIdSchema, the caller's by identityOf.
  const userScope = (userId: string): Scope => ({ kind: "user", userId });
  const GLOBAL: Scope = { kind: "global" };

  app.get("/trading-state", { schema: { response: { 200: OwnOut } } }, async (req) => {
    const who = requireIdentity(req);
    const s = await killSwitch.effectiveFor(who.userId);
    return { userId: who.userId, effective: s.effective, global: ownScope(s.global), user: ownScope(s.user) };
  });

  const history = async (scope: Scope, q: { limit?: number; before?: string }) => {
    const limit = q.limit ?? 100;
    const { page, nextBefore } = pageOf(await killSwitch.history(scope, limit + 1, q.before ?? null), limit, (last) => last.id);
    return { changes: page.map(changeOut), nextBefore };
  };

  app.get("/trading-state/global", { schema: { response: { 200: ScopeOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return scopeOut(await killSwitch.read(GLOBAL));
  });
  app.put("/trading-state/global", { schema: { body: ChangeBody, response: { 200: ScopeOut } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    return scopeOut(await killSwitch.change(GLOBAL, req.body.state, req.body.reason, who));
  });
  app.get("/trading-state/global/history", { schema: { querystring: HistoryQuery, response: { 200: HistoryOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return history(GLOBAL, req.query);
  });

  app.get("/trading-state/users/:userId", { schema: { params: UserParams, response: { 200: ScopeOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return scopeOut(await killSwitch.read(userScope(req.params.userId)));
  });
  app.put("/trading-state/users/:userId", { schema: { params: UserParams, body: ChangeBody, response: { 200: ScopeOut } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    return scopeOut(await killSwitch.change(userScope(req.params.userId), req.body.state, req.body.reason, who));
  });
  app.get("/trading-state/users/:userId/history", { schema: { params: UserParams, querystring: HistoryQuery, response: { 200: HistoryOut } } }, async (req) => {
    requireIdentity(req, "admin");
    return history(userScope(req.params.userId), req.query);
  });
}
