/**
 * Services implemented in this image: catalog name -> lazy loader of its module.
 * Adding a service = one folder under services/ exporting `default defineService({...})` + one line here.
 */
import type { ServiceModule } from "./kit/service";

type Loader = () => Promise<ServiceModule<any>>;

export const registry: Record<string, Loader> = {
  "api-gateway": () => import("./services/api-gateway").then((m) => m.default),
  "user-management": () => import("./services/user-management").then((m) => m.default),
  "configuration-service": () => import("./services/configuration-service").then((m) => m.default),
  "database-service": () => import("./services/database-service").then((m) => m.default),
  "central-hub": () => import("./services/central-hub").then((m) => m.default),
  "data-bridge": () => import("./services/data-bridge").then((m) => m.default),
  "order-management": () => import("./services/order-management").then((m) => m.default),
  "trading-engine": () => import("./services/trading-engine").then((m) => m.default),
  "portfolio-manager": () => import("./services/portfolio-manager").then((m) => m.default),
  "risk-analyzer": () => import("./services/risk-analyzer").then((m) => m.default),
  "compliance-monitor": () => import("./services/compliance-monitor").then((m) => m.default),
  "ml-predictor": () => import("./services/ml-predictor").then((m) => m.default),
  "backtesting-engine": () => import("./services/backtesting-engine").then((m) => m.default),
  "ai-orchestrator": () => import("./services/ai-orchestrator").then((m) => m.default),
  "ai-chain-analytics": () => import("./services/ai-chain-analytics").then((m) => m.default),
  "payment-service": () => import("./services/payment-service").then((m) => m.default),
  "usage-monitoring": () => import("./services/usage-monitoring").then((m) => m.default),
  "billing-service": () => import("./services/billing-service").then((m) => m.default),
  "notification-service": () => import("./services/notification-service").then((m) => m.default),
  "performance-analytics": () => import("./services/performance-analytics").then((m) => m.default),
  "revenue-analytics": () => import("./services/revenue-analytics").then((m) => m.default),
  "chain-debug": () => import("./services/chain-debug").then((m) => m.default),
};
