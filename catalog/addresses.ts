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
