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
/**
 * Ports that no web client sends an HTTP request to: the WHATWG Fetch standard's "bad ports" (every
 * browser, and Node's fetch, refuses them), the well-known ports of services speaking another
 * protocol, mostly in plaintext (FTP 21, SSH 22, SMTP 25/465/587, DNS 53, POP3 110, IMAP 143/993,
 * LDAP 389/636, NFS 2049, SIP 5060, X11 6000, IRC 6667, ...). A request sent there is a
 * cross-protocol request: its lines read as that service's commands (with implicit TLS on 465, 636,
 * 993, 995 the handshake even succeeds). The stack refuses them as webhook ports (notifyWebhookPorts),
 * and notification-service in its NOTIFY_WEBHOOK_PORTS: it would POST a user-chosen body to any public
 * host on them. The same list as Node's fetch (undici's badPorts), and 0.
 * https://fetch.spec.whatwg.org/#port-blocking (2026-12).
 */
export const FETCH_BAD_PORTS: readonly number[] = [
  0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119,
  123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990,
  993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
];

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

/**
 * The prefix length of a CIDR whose digits after the '/' have leading zeros ("10.0.0.0/016"), as the
 * number proxy-addr (the gateway's reader) takes it, 16; undefined for any other entry. Some readers take
 * a leading 0 for octal (/14), so the range a reviewer reads need not be the one trusted: refused like
 * the leading zeros of every number the stack config reads, by the stack config in trustedProxies and
 * dockerSubnet and by the service kit in TRUST_PROXY at start alike (session 63).
 */
export function zeroPaddedPrefix(cidr: string): number | undefined {
  const bits = cidr.split("/")[1];
  return bits !== undefined && /^0\d+$/.test(bits) ? Number(bits) : undefined;
}

/**
 * The bits of an IPv4 or IPv6 address (already checked as one, node:net isIP) as a text of 32 or 128 '0's
 * and '1's: IPv6 in its canonical spelling first (the URL parser's: lower case, zeros compressed, no
 * dotted quad), so every spelling of one address has the same bits. No node:net here (see above): an
 * address checked as one is IPv6 when it holds a ':'.
 */
function addressBits(address: string): string {
  if (!address.includes(":")) return address.split(".").map((octet) => Number(octet).toString(2).padStart(8, "0")).join("");
  const [head, tail] = new URL(`http://[${address}]/`).hostname.slice(1, -1).split("::");
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  const all = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill("0"), ...groups(tail)];
  return all.map((group) => parseInt(group, 16).toString(2).padStart(16, "0")).join("");
}

/** The address (IPv4 dotted, IPv6 canonical) whose bits are `bits` (32 or 128 of them). */
function addressOfBits(bits: string): string {
  if (bits.length === 32) return [0, 8, 16, 24].map((at) => parseInt(bits.slice(at, at + 8), 2)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => parseInt(bits.slice(i * 16, i * 16 + 16), 2).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/** An address or CIDR (already checked as one) as its address's bits and its prefix length (an address is a /32 or /128). */
function rangeOf(entry: string): { bits: string; prefix: number } {
  const [address, prefix] = entry.split("/");
  const bits = addressBits(address);
  return { bits, prefix: prefix === undefined ? bits.length : Number(prefix) };
}

/**
 * The network a CIDR (already checked as an address or CIDR) names when its address has bits set past the
 * prefix length, written as it should have been ("10.0.0.1/16": "10.0.0.0/16"; IPv6 canonical); undefined
 * for a network address and for a plain address. proxy-addr (the gateway's reader) and Docker mask the
 * host bits away without a word, so 10.0.0.1/16 trusts all of 10.0.0.0/16: more often a typo (a host
 * meant, 10.0.0.1/32, or a narrower range) than a network written that way. Refused with the network
 * spelled out by the stack config (trustedProxies, dockerSubnet) and by the service kit (TRUST_PROXY) at
 * start alike (session 63).
 */
export function hostBitsNetwork(entry: string): string | undefined {
  if (!entry.includes("/")) return undefined;
  const { bits, prefix } = rangeOf(entry);
  if (!bits.slice(prefix).includes("1")) return undefined;
  return `${addressOfBits(bits.slice(0, prefix).padEnd(bits.length, "0"))}/${prefix}`;
}

/**
 * Whether the range `outer` (an address or CIDR, already checked as one) holds all of `inner`: the same family, a prefix
 * no longer, the same bits up to it (the stack config's check that trustedProxies covers dockerSubnet).
 */
export function rangeCovers(outer: string, inner: string): boolean {
  const [a, b] = [rangeOf(outer), rangeOf(inner)];
  return a.bits.length === b.bits.length && a.prefix <= b.prefix && a.bits.slice(0, a.prefix) === b.bits.slice(0, a.prefix);
}

/**
 * The first two trusted-proxy entries (already checked as addresses or CIDRs) that are one range to the
 * gateway, as written, or undefined. proxy-addr matches a peer against an entry's address bits up to its
 * prefix length (an address is a /32 or /128): 10.0.0.1/16 is 10.0.0.0/16, 172.28.0.2 is 172.28.0.2/32,
 * FD00:10:0::/48 is fd00:10::/48. A narrower range inside a wider one is another range, not a repeat.
 * The stack config's trustedProxies and the service kit's TRUST_PROXY refuse a repeat alike (session 63).
 */
export function repeatedProxyRange(entries: readonly string[]): [string, string] | undefined {
  const seen = new Map<string, string>();
  for (const entry of entries) {
    const { bits, prefix } = rangeOf(entry);
    const range = `${bits.length}:${bits.slice(0, prefix)}`;
    const earlier = seen.get(range);
    if (earlier !== undefined) return [earlier, entry];
    seen.set(range, entry);
  }
  return undefined;
}

/**
 * Why an IPv4 trusted-proxy entry (an address or a CIDR of /16 or narrower, already checked as one)
 * is no edge proxy's, or undefined: the edge proxy (the stack's Nginx, the ingress controller's pods)
 * sends from a private range (10/8, 172.16/12, 192.168/16), CGNAT's 100.64/10 (some clusters' pod
 * networks) or loopback. A public entry trusts that internet network to set X-Forwarded-For and pick
 * the client address of every request it sends; link-local holds the cloud metadata address. The
 * first two octets decide, as the entry is a /16 or narrower. IPv6: ipv6ProxyScope.
 */
export function nonProxyIPv4(address: string): string | undefined {
  const [a, b] = address.split(".").map(Number);
  if (a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)) return undefined;
  if (a === 169 && b === 254) return "link-local (the cloud metadata service's range)";
  if (a === 0 || a >= 224) return "no unicast range";
  return "public";
}

/** The proxy's ranges a trusted-proxy entry may lie in, as the refusals name them. */
export const PROXY_IPV4_RANGES = "10/8, 172.16/12, 192.168/16, 100.64/10 or loopback";

/**
 * Where an IPv6 trusted-proxy entry (an address or a CIDR of /48 or narrower; its first 16 bits decide)
 * lies: "local", the host's or cluster's own network (unique local fc00::/7, link-local fe80::/10,
 * loopback ::1); "global", global unicast 2000::/3, which is any internet network's as well as an IPv6
 * pod network's (EKS IPv6, dual-stack clusters give pods addresses of the cluster's public prefix), so it
 * is trusted only with a named opt-in, the stack's `trustGlobalIPv6Proxies` and the services'
 * TRUST_PROXY_GLOBAL_IPV6 (session 51; before, any public /48 was taken, and every host of it could
 * pick the address the gateway counts); "none", no unicast range (multicast, unspecified, reserved).
 */
export function ipv6ProxyScope(address: string): "local" | "global" | "none" {
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1); // canonical: zeros compressed, lower case
  } catch {
    return "none"; // not an IPv6 address the URL parser writes (a zone id)
  }
  if (host === "::1") return "local";
  const first = host.startsWith("::") ? 0 : parseInt(host.split(":")[0], 16);
  if ((first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80) return "local";
  return (first & 0xe000) === 0x2000 ? "global" : "none";
}

/** The IPv6 ranges a trusted-proxy entry may lie in without the opt-in, as the refusals name them. */
export const PROXY_IPV6_RANGES = "unique local fc00::/7, link-local fe80::/10 or loopback ::1";

/**
 * Ports of datastores, cluster and monitoring services, by port: no webhook receiver listens there,
 * and a webhook (notification-service POSTs a user-chosen URL's host on the ports the operator opens)
 * would let a user probe a host's internal-looking services, their answer or silence telling which run:
 * the stack's own datastores (PostgreSQL, Dragonfly/Redis, ClickHouse, ArangoDB, Weaviate, Redpanda),
 * Kubernetes' control plane (etcd, the API server, kubelet, controller-manager, scheduler), the Docker
 * engine's API, Prometheus's family and Grafana, and the datastores most often beside them. The stack
 * refuses them as notifyWebhookPorts beside FETCH_BAD_PORTS, notification-service in NOTIFY_WEBHOOK_PORTS.
 * HTTPS's alternatives (443, 8443, 9443) are none of them.
 */
export const INTERNAL_SERVICE_PORTS: Readonly<Record<number, string>> = {
  2181: "ZooKeeper", 2375: "the Docker engine API", 2376: "the Docker engine API (TLS)", 2379: "etcd", 2380: "etcd (peers)", 3000: "Grafana",
  3306: "MySQL", 5432: "PostgreSQL", 6379: "Redis/Dragonfly", 6380: "Redis (TLS)", 6443: "the Kubernetes API server", 8080: "Weaviate",
  8123: "ClickHouse (HTTP)", 8200: "Vault", 8500: "Consul", 8529: "ArangoDB", 9000: "ClickHouse (native)", 9009: "ClickHouse (interserver)",
  9090: "Prometheus", 9092: "Kafka/Redpanda", 9093: "Alertmanager", 9100: "node exporter", 9200: "Elasticsearch", 9300: "Elasticsearch (transport)",
  9440: "ClickHouse (native TLS)", 9644: "Redpanda (admin)", 10250: "the kubelet", 10255: "the kubelet (read-only)", 10257: "kube-controller-manager",
  10259: "kube-scheduler", 11211: "memcached", 19092: "Redpanda (external)", 26379: "Redis Sentinel", 27017: "MongoDB", 50051: "Weaviate (gRPC)",
};

/** The ports a webhook may not name: FETCH_BAD_PORTS and INTERNAL_SERVICE_PORTS. */
export const WEBHOOK_REFUSED_PORTS: readonly number[] = [...FETCH_BAD_PORTS, ...Object.keys(INTERNAL_SERVICE_PORTS).map(Number)];

/** The SMTP ports among the WHATWG Fetch standard's bad ports: submission, implicit TLS, relay. */
export const SMTP_PORTS: readonly number[] = [25, 465, 587];

/** The web's ports, the edge's (the Docker edge's and the ingress controller's defaults): HTTP and HTTPS, no SMTP. */
export const WEB_PORTS: Readonly<Record<number, string>> = { 80: "HTTP (the edge's)", 443: "HTTPS (the edge's)" };

/**
 * Why a port is no SMTP relay's, or undefined: any port a relay listens on (587, 465, 25, 2525, a
 * provider's own) is taken, but none of the other FETCH_BAD_PORTS, other protocols' (SSH 22, DNS 53,
 * IMAP 143, ...), none of INTERNAL_SERVICE_PORTS (a datastore's, the cluster's, monitoring's: 5432,
 * 6379, 9092, 6443, ...; session 65) and none of WEB_PORTS: on Kubernetes notification-service's egress
 * opens the port to every public address (or to the private relay's address, where a datastore may
 * listen on it), and a relay named on another service's port sends the mail's lines as that service's
 * commands. The stack's smtpPort and the service's SMTP_PORT alike (session 50).
 */
export function smtpPortProblem(port: number): string | undefined {
  const service = INTERNAL_SERVICE_PORTS[port] ?? WEB_PORTS[port];
  if (service !== undefined) {
    return `${port} is the port of ${service}, which speaks no SMTP, and on Kubernetes notification-service's egress opens it to every public address: use the relay's SMTP port (587 STARTTLS, 465 implicit TLS, 25, 2525)`;
  }
  if (!FETCH_BAD_PORTS.includes(port) || SMTP_PORTS.includes(port)) return undefined;
  return `${port} is the port of a service that speaks no SMTP (the WHATWG Fetch standard's bad ports: SSH, DNS, IMAP, ...), and on Kubernetes notification-service's egress opens it to every public address: use the relay's SMTP port (587 STARTTLS, 465 implicit TLS, 25, 2525)`;
}
