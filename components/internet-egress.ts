/**
 * What each service must reach outside the platform, derived from the stack's configuration: the
 * Kubernetes runtime turns it into NetworkPolicy egress rules (components/runtime/kubernetes/
 * network-policy.ts) on top of the namespace's default deny, so a setting that makes a service call
 * out (live trading, Binance market data, an SMTP relay) opens exactly that path and nothing more.
 * Pure: no Pulumi, so tests compute it without an engine.
 */
import type { ServiceDefinition } from "../catalog";
import type { StackConfig } from "../stacks/config";

/**
 * The private IPv4 ranges (RFC 1918) the public-internet rule leaves out: a workload opted into the
 * internet does not thereby reach the cluster's nodes and pods or the company network.
 */
export const PRIVATE_RANGES: readonly string[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
/**
 * Addresses outside RFC 1918 that are no internet either and hold the cloud metadata service, which
 * hands the node's credentials to whoever asks: link-local (169.254.169.254 on AWS, GCP, Azure) and
 * the shared address space (Alibaba's 100.100.100.200). The public-internet rule leaves them out too:
 * with only the private ranges left out, every workload given the internet reached them on its ports
 * (the policy pack's network-policy-default-deny now refuses that).
 */
export const METADATA_RANGES: readonly string[] = ["169.254.0.0/16", "100.64.0.0/10"];

/**
 * Binance's endpoints as the services call them by default (services/src/trading/marketdata/binance.ts,
 * services/src/trading/binance/adapter.ts): the REST API on 443, the market data websocket stream
 * (stream.binance.com) on 9443.
 */
export const BINANCE_REST_PORT = 443;
export const BINANCE_STREAM_PORT = 9443;
/** HTTPS: Telegram's bot API, users' webhook endpoints, the card processor's API. */
const HTTPS_PORT = 443;

export interface InternetEgress {
  /** TCP ports reachable on every public address (0.0.0.0/0 minus PRIVATE_RANGES and METADATA_RANGES). */
  publicPorts: number[];
  /** Single private addresses reachable on one port each: an SMTP relay inside the network, given by its IP. */
  privateHosts: { address: string; port: number }[];
}

/**
 * The internet egress of one service, or undefined for none. `paymentKeySet`: whether the
 * paymentProcessorApiKey secret is set (the card processor is called only with it).
 *
 * An SMTP relay given by host name is assumed public: a name that resolves into a private range is
 * blocked by the policy, so a relay inside the network must be configured by its IP address.
 */
export function internetEgressOf(service: ServiceDefinition, config: StackConfig, paymentKeySet: boolean): InternetEgress | undefined {
  const publicPorts = new Set<number>();
  const privateHosts: InternetEgress["privateHosts"] = [];
  // Orders go to Binance's REST API in live mode only.
  if (service.secrets.includes("binance") && config.trading.mode === "live") publicPorts.add(BINANCE_REST_PORT);
  // Candles: the REST API for history, the websocket stream for live bars.
  if (service.ingestsMarketData && config.trading.marketDataSource === "binance") {
    publicPorts.add(BINANCE_REST_PORT);
    publicPorts.add(BINANCE_STREAM_PORT);
  }
  if (service.secrets.includes("payment") && paymentKeySet) publicPorts.add(HTTPS_PORT);
  if (service.secrets.includes("notification")) {
    // Telegram's bot API on 443; users' webhooks on the ports the stack allows them (notifyWebhookPorts).
    publicPorts.add(HTTPS_PORT);
    for (const port of config.notifyWebhookPorts) publicPorts.add(port);
    const { host, port } = config.smtp;
    if (host !== undefined) {
      if (isPrivateIPv4(host)) privateHosts.push({ address: host, port });
      else publicPorts.add(port);
    }
  }
  if (publicPorts.size === 0 && privateHosts.length === 0) return undefined;
  return { publicPorts: [...publicPorts].sort((a, b) => a - b), privateHosts };
}

/** A dotted IPv4 address inside PRIVATE_RANGES (a host name is not). */
export function isPrivateIPv4(host: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}
