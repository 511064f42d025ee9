/**
 * Address facts both the stack's configuration (stacks/config.ts, trustedProxies) and the services
 * (services/src/kit/request-guards.ts, TRUST_PROXY) judge alike: one definition, so the stack refuses
 * exactly what a service would refuse at start.
 */

/**
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d, in any spelling): the WHATWG URL parser writes every
 * IPv6 address in its canonical form, where a mapped one is `::ffff:` and two groups. proxy-addr
 * applies such a range to IPv4 clients with 96 bits less (::ffff:0.0.0.0/96 is 0.0.0.0/0).
 * Only IPv6 characters are let near the parser (a "]" would end the host early), which refuses any
 * text that is no IPv6 address. No import: catalog/ is shared with the services as plain code.
 */
export function isIPv4MappedIPv6(address: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(address)) return false;
  try {
    return /^\[::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}\]$/.test(new URL(`http://[${address}]`).hostname);
  } catch {
    return false; // not an IPv6 address
  }
}

/**
 * The cloud metadata service's addresses, which hand the node's (or the pod's) cloud credentials to
 * whoever asks: 169.254.169.254 (AWS, GCP, Azure, OpenStack, Oracle), Alibaba's 100.100.100.200 and
 * AWS's IPv6 fd00:ec2::254. The one list: the policy pack keeps endpoints and NetworkPolicy egress
 * away from them, the stack config refuses them as the SMTP relay.
 */
export const CLOUD_METADATA_ADDRESSES: readonly string[] = ["169.254.169.254", "100.100.100.200", "fd00:ec2::254"];

/**
 * The widest range trusted to set X-Forwarded-For at the gateway: the edge proxy's. A Kubernetes pod
 * network, where the ingress controller's pods live, is commonly an IPv4 /16 (the default
 * 10.244.0.0/16) and an IPv6 /48; a Docker network of the stack needs no more than a /16. Every host
 * in a trusted range may pick the client address the gateway's rate limit, failed API keys and login
 * lockout count. The one bound: the stack config refuses wider `trustedProxies` entries and a wider
 * `dockerSubnet` (its default TRUST_PROXY on docker), and the service kit refuses a wider TRUST_PROXY
 * entry at start, however the service was started.
 */
export const TRUSTED_PROXY_MIN_PREFIX = { v4: 16, v6: 48 } as const;

/** Whether a trusted-proxy entry of this family and prefix length (an address is a /32 or /128) is wider than the bound. */
export function widerThanEdgeProxy(family: 4 | 6, prefix: number): boolean {
  return prefix < (family === 4 ? TRUSTED_PROXY_MIN_PREFIX.v4 : TRUSTED_PROXY_MIN_PREFIX.v6);
}
