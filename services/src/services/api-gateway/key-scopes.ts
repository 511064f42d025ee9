/**
 * What an API key may reach through the gateway. Keys are for programs (a trading bot), and a key
 * that leaks must not be able to move money or take over the account, so the rule is an allow
 * list, not a deny list:
 *   - `read`: every GET and HEAD (a `trade` key reads too);
 *   - `trade`: the writes listed in TRADE_WRITES below, which place, cancel and plan trades;
 *   - everything else needs a user session (a Bearer access token from /api/users/login): payments
 *     and refunds, billing (subscriptions, plan changes, cancellations), API keys, passwords,
 *     logout, notification targets, every admin action, and any route added later until it is
 *     listed here on purpose. A key there gets 403 SESSION_REQUIRED; a key lacking the scope a
 *     listed route needs gets 403 INSUFFICIENT_SCOPE (both name the field `scope`).
 * Paths are matched as the upstream receives them (raw, case-sensitive, one segment per `[^/]+`):
 * a spelling the services would route elsewhere or not at all simply matches nothing here.
 */
import type { ApiKeyScope } from "../../kit";

const SEGMENT = "[^/]+";
const route = (pattern: string) => new RegExp(`^${pattern.replace(/:id/g, SEGMENT)}/?$`);

/** The non-read routes a `trade` key may call, by catalog service name and method. */
const TRADE_WRITES: Readonly<Record<string, ReadonlyArray<readonly [method: string, path: RegExp]>>> = {
  "order-management": [["POST", route("")], ["POST", route("/:id/cancel")]],
  "risk-analyzer": [["POST", route("/check")]],
  "ai-orchestrator": [
    ["POST", route("/strategies")],
    ["PATCH", route("/strategies/:id")],
    ["DELETE", route("/strategies/:id")],
    ["POST", route("/strategies/:id/enable")],
    ["POST", route("/strategies/:id/disable")],
    ["POST", route("/strategies/:id/evaluate")],
  ],
  "backtesting-engine": [["POST", route("")], ["POST", route("/:id/cancel")], ["DELETE", route("/:id")]],
  "ml-predictor": [["POST", route("/predict")]],
};

/** What a request needs from an API key: one of its scopes, or a session (no key may send it). */
export type KeyRequirement = ApiKeyScope | "session";

/** The requirement of `method` on `path` (the upstream path, without the query) of `service`. */
export function keyRequirement(service: string, method: string, path: string): KeyRequirement {
  if (method === "GET" || method === "HEAD") return "read";
  const writes = TRADE_WRITES[service] ?? [];
  return writes.some(([m, re]) => m === method && re.test(path)) ? "trade" : "session";
}

/** Whether a key with these scopes meets a requirement (`trade` includes reading). */
export function scopesMeet(scopes: readonly ApiKeyScope[], need: KeyRequirement): boolean {
  if (need === "session") return false;
  return scopes.includes(need) || (need === "read" && scopes.includes("trade"));
}
