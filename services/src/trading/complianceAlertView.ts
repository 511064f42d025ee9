/**
 * What a trader is told of a compliance alert on their account: that it was raised, about what in
 * general terms (the rule's category), when, on which symbol and order. Never the alert's message or
 * evidence: they name the thresholds and windows that tripped ("position 1100 beyond the limit 1000",
 * "cancelled after 800 ms", the fills a wash window matched), so a trader could probe the
 * surveillance by trading just under them. Compliance officers (admins) read the full alert.
 * One definition for every path that reaches a trader: compliance-monitor's `GET /alerts/mine` and
 * notification-service's notices (e-mail, Telegram, webhook, `GET /deliveries`).
 */
import type { AlertRule } from "./compliance";

const SUMMARIES: Record<AlertRule, string> = {
  RESTRICTED_SYMBOL: "trading in a restricted symbol",
  POSITION_LIMIT: "the size of your position",
  WASH_TRADE: "fills that may offset each other (possible wash trade)",
  SPOOFING: "an order cancellation that may indicate spoofing",
  LAYERING: "orders on one side of the book that may indicate layering",
  EXCESSIVE_CANCEL_RATIO: "the share of your orders cancelled",
};

/** The category of a rule in words; a rule this release does not know (a newer producer's) in general terms. */
export const alertSummary = (rule: string): string => (Object.hasOwn(SUMMARIES, rule) ? SUMMARIES[rule as AlertRule] : "your trading activity");

/** The fields of an alert a trader may read. */
export interface TraderAlert {
  alertId: string;
  rule: string;
  summary: string;
  symbol: string;
  /** The order concerned; null on alerts recorded before alerts named it. */
  orderId: string | null;
  severity: string;
  ts: unknown;
  raisedAt?: unknown;
}

/** The trader's view of an alert (a stored row or a `compliance.alerts` message): only the fields above. */
export function traderAlert(a: { alertId: string; rule: string; symbol: string; orderId?: string | null; severity: string; ts: unknown; raisedAt?: unknown }): TraderAlert {
  const view: TraderAlert = { alertId: a.alertId, rule: a.rule, summary: alertSummary(a.rule), symbol: a.symbol, orderId: a.orderId ?? null, severity: a.severity, ts: a.ts };
  if (a.raisedAt !== undefined) view.raisedAt = a.raisedAt;
  return view;
}
