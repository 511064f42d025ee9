/**
 * components/internet-egress.ts: what each service may reach outside the platform, from the stack's
 * configuration (the Kubernetes NetworkPolicies are built from it; tests/unit/program.test.ts checks them).
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";
import { BINANCE_REST_PORT, BINANCE_STREAM_PORT, internetEgressOf, isPrivateIPv4 } from "../../components/internet-egress";
import { parseStackConfig, RawConfig } from "../../stacks/config";

const k8s: RawConfig = { target: "kubernetes", registry: "registry.example.com/ai", certIssuer: "letsencrypt", ingressHost: "trading.example.com" };
const service = (name: string) => catalog.find((s) => s.name === name)!;
const egress = (name: string, raw: RawConfig, paymentKeySet = false) => internetEgressOf(service(name), parseStackConfig("prod", { ...k8s, ...raw }), paymentKeySet);

describe("internetEgressOf", () => {
  it("gives the market data ingester Binance's REST and stream ports only when the source is binance", () => {
    const ingesters = catalog.filter((s) => s.ingestsMarketData).map((s) => s.name);
    expect(ingesters).toEqual(["data-bridge"]);
    expect(egress("data-bridge", {})).toBeUndefined();
    expect(egress("data-bridge", { marketDataSource: "replay" })).toBeUndefined();
    expect(egress("data-bridge", { marketDataSource: "binance" })).toEqual({ publicPorts: [443, 9443], privateHosts: [] });
  });

  it("uses the ports of the Binance endpoints the services call by default", () => {
    const source = fs.readFileSync(path.join(__dirname, "../../services/src/services/data-bridge/index.ts"), "utf8");
    expect(source).toContain(`default: "https://api.binance.com"`);
    expect(source).toContain(`default: "wss://stream.binance.com:${BINANCE_STREAM_PORT}"`);
    expect(BINANCE_REST_PORT).toBe(443);
  });

  it("gives the exchange connector 443 in live mode only, the card processor's client 443 with its key only", () => {
    expect(egress("trading-engine", { marketDataSource: "binance" })).toBeUndefined();
    expect(egress("trading-engine", { tradingMode: "live", marketDataSource: "binance" })).toEqual({ publicPorts: [443], privateHosts: [] });
    expect(egress("payment-service", {})).toBeUndefined();
    expect(egress("payment-service", {}, true)).toEqual({ publicPorts: [443], privateHosts: [] });
  });

  it("gives the notification sender HTTPS and the SMTP relay's port, on the relay's own address when it is private", () => {
    expect(egress("notification-service", {})).toEqual({ publicPorts: [443], privateHosts: [] });
    expect(egress("notification-service", { smtpHost: "smtp.example.com" })).toEqual({ publicPorts: [443, 587], privateHosts: [] });
    expect(egress("notification-service", { smtpHost: "smtp.example.com", smtpPort: "465" })).toEqual({ publicPorts: [443, 465], privateHosts: [] });
    expect(egress("notification-service", { smtpHost: "203.0.113.7", smtpPort: "2525" })).toEqual({ publicPorts: [443, 2525], privateHosts: [] });
    expect(egress("notification-service", { smtpHost: "192.168.1.25", smtpPort: "25" })).toEqual({ publicPorts: [443], privateHosts: [{ address: "192.168.1.25", port: 25 }] });
    // Users' webhooks on the ports the stack allows them (notifyWebhookPorts, session 42); Telegram keeps 443.
    expect(egress("notification-service", { notifyWebhookPorts: "8443,9443" })).toEqual({ publicPorts: [443, 8443, 9443], privateHosts: [] });
  });

  it("gives nothing to the services that call nothing outside", () => {
    const config = parseStackConfig("prod", { ...k8s, tradingMode: "live", marketDataSource: "binance", smtpHost: "smtp.example.com" });
    const out = catalog.filter((s) => internetEgressOf(s, config, true) !== undefined).map((s) => s.name).sort();
    expect(out).toEqual(["data-bridge", "notification-service", "payment-service", "trading-engine"]);
  });

  it("tells the private ranges (RFC 1918) from the rest", () => {
    for (const a of ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1"]) expect(isPrivateIPv4(a), a).toBe(true);
    for (const a of ["172.15.0.1", "172.32.0.1", "192.169.0.1", "11.0.0.1", "smtp.example.com", "10.0.0"]) expect(isPrivateIPv4(a), a).toBe(false);
  });
});
