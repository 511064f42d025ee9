/**
 * The business and analytics tier of the catalog (issue 13): payments, billing, usage, notifications,
 * performance and revenue analytics. Kept apart from ./services.ts only for length; same contract.
 */
import type { Contract } from "./services";

export const businessContracts = {
  "payment-service": {
    description: "Payment intents with idempotency keys, refunds, double-entry ledger, card processor webhooks, reconciliation",
    tier: "support",
    port: 8013,
    route: "payments",
    // The processor posts signed webhooks; the signature, not a token, authenticates them.
    anonymousPaths: ["/webhooks/processor"],
    requires: ["postgres", "redpanda"],
    optional: [],
    secrets: ["payment"],
  },
  "usage-monitoring": {
    description: "API usage per user, key and route from the gateway's per-request events (ClickHouse); billable units for billing",
    tier: "analytics",
    port: 9101,
    route: "usage",
    anonymousPaths: [],
    requires: ["clickhouse", "redpanda"],
    optional: [],
    secrets: [],
  },
  "billing-service": {
    description: "Plans, subscriptions (trials, prorated changes, cancel at period end), usage-based prices, invoices, dunning",
    tier: "support",
    port: 8011,
    route: "billing",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: [],
    calls: ["payment-service", "usage-monitoring"],
    secrets: [],
  },


  "notification-service": {
    description: "Tells users about fills, risk rejections, compliance alerts, billing and payments: e-mail (SMTP), Telegram, signed webhooks; preferences, quiet hours, dedup, rate limits, dead letters",
    tier: "support",
    port: 9003,
    route: "notifications",
    anonymousPaths: [],
    requires: ["postgres", "redpanda", "dragonfly"],
    optional: [],
    secrets: ["notification"],
  },  "performance-analytics": {
    description: "Returns, Sharpe ratio, drawdown and exposure per user and strategy from fills and candle closes (ClickHouse, scheduled rollups)",
    tier: "analytics",
    port: 9100,
    route: "performance",
    anonymousPaths: [],
    requires: ["clickhouse", "redpanda"],
    optional: [],
    secrets: [],
  },  "revenue-analytics": {
    description: "MRR, ARR, churn, ARPU and LTV of the platform from billing and payment events (integer minor units)",
    tier: "analytics",
    port: 9102,
    route: "revenue",
    anonymousPaths: [],
    requires: ["postgres", "redpanda"],
    optional: [],
    secrets: [],
  },
} satisfies Record<string, Contract>;
