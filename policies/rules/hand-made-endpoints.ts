import { BlockList, isIP } from "node:net";
import { StackValidationPolicy } from "@pulumi/policy";
import { canonicalAddress } from "../lib/cidr";
import { CLOUD_METADATA_ADDRESSES } from "../lib/cloud-metadata";
import { outsideReach, routerTargets } from "../lib/routes";
import { plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, str } from "../lib/values";
import { K8S, metadataLabels, namespaceOf, objectName } from "../lib/workloads";

/** Endpoints, and a patch of one (server-side apply adds addresses to an existing object just as well). */
const ENDPOINTS = /^kubernetes:core\/v1:Endpoints(Patch)?$/;
/** discovery.k8s.io/v1, and the v1beta1 of older clusters; a patch too (it may add addresses, or the label tying a slice to a Service). */
const ENDPOINT_SLICE = /^kubernetes:discovery\.k8s\.io\/v1(beta1)?:EndpointSlice(Patch)?$/;
const isEndpoints = (type: string) => ENDPOINTS.test(type) || ENDPOINT_SLICE.test(type);

/**
 * The Endpoints and EndpointSlices of the stack. A List of either reaches here as its items, each the object it is
 * (`plainResources`, lib/lists.ts); session 53: this policy's own expansion of such Lists, which never saw one, is gone.
 */
function endpointObjects(resources: StackResource[]): StackResource[] {
    return resources.filter((r) => isEndpoints(r.type));
}
/** The label that ties an EndpointSlice to its Service (kube-proxy and ingress-nginx read every slice so labelled). */
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * Addresses no endpoint may have, by what they reach from the node or pod that connects: the cloud
 * metadata service (169.254.169.254 on AWS, GCP, Azure, OpenStack, Oracle; AWS's IPv6 fd00:ec2::254;
 * Alibaba's 100.100.100.200): the node's credentials), the rest of link-local (169.254.0.0/16,
 * fe80::/10), loopback (127.0.0.0/8, ::1: the node's own services, the kubelet's and etcd's local
 * ports), the unspecified and "this network" addresses (0.0.0.0/8, ::), and multicast. Node's
 * BlockList matches IPv4-mapped IPv6 (::ffff:169.254.169.254, ::ffff:a9fe:a9fe) against the IPv4
 * ranges, as the kernel routes them. The API server refuses unspecified, loopback and link-local
 * addresses in Endpoints and IP EndpointSlices itself, but not the metadata addresses outside
 * link-local nor multicast; the pack reports them all at preview, before an `up` fails half-way.
 */
const SPECIAL: ReadonlyArray<[string, number, "ipv4" | "ipv6", string]> = [
    ...CLOUD_METADATA_ADDRESSES.map((a): [string, number, "ipv4" | "ipv6", string] =>
        isIP(a) === 4 ? [a, 32, "ipv4", "the cloud metadata address"] : [a, 128, "ipv6", "the cloud metadata address"]),
    ["169.254.0.0", 16, "ipv4", "link-local"],
    ["fe80::", 10, "ipv6", "link-local"],
    ["127.0.0.0", 8, "ipv4", "loopback"],
    ["::1", 128, "ipv6", "loopback"],
    ["0.0.0.0", 8, "ipv4", "unspecified"],
    ["::", 128, "ipv6", "unspecified"],
    ["224.0.0.0", 4, "ipv4", "multicast"],
    ["ff00::", 8, "ipv6", "multicast"],
];
const SPECIAL_LISTS = SPECIAL.map(([net, prefix, family, what]) => {
    const list = new BlockList();
    list.addSubnet(net, prefix, family);
    return { list, what };
});

/** The NAT64 well-known prefix (RFC 6052): 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a cluster's NAT64 gateway. */
const NAT64 = new BlockList();
NAT64.addSubnet("64:ff9b::", 96, "ipv6");

/** The IPv4 address a NAT64 address embeds (its last 32 bits), read from URL's compressed spelling. */
function nat64Embedded(ip: string): string {
    const groups = new URL(`http://[${ip}]`).hostname.slice(1, -1).split(":");
    const [h7, h8] = groups.slice(-2).map((g) => parseInt(g || "0", 16));
    return [h7 >> 8, h7 & 255, h8 >> 8, h8 & 255].join(".");
}

/** What a special address reaches ("loopback", …), or undefined for an ordinary address or a name. */
export function specialAddress(address: string): string | undefined {
    // Session 50: as the API server and kube-proxy read it, leading zeros and all (`0100.100.100.200`).
    const ip = canonicalAddress(address) ?? address.trim();
    const family = isIP(ip);
    if (family === 0) return undefined;
    if (family === 6 && NAT64.check(ip, "ipv6")) {
        const what = specialAddress(nat64Embedded(ip));
        return what && `${what}, through NAT64`;
    }
    return SPECIAL_LISTS.find(({ list }) => list.check(ip, family === 4 ? "ipv4" : "ipv6"))?.what;
}

/** The addresses of a hand-made Endpoints (`subsets[].addresses[].ip`, `notReadyAddresses` too) or EndpointSlice (`endpoints[].addresses[]`), each with its field. */
export function endpointAddresses(type: string, props: Record<string, any>): Array<{ field: string; address: string }> {
    const out: Array<{ field: string; address: string }> = [];
    if (ENDPOINTS.test(type)) {
        arr(props.subsets).forEach((s, i) => {
            for (const list of ["addresses", "notReadyAddresses"]) {
                arr(isRecord(s) ? s[list] : undefined).forEach((a, j) => {
                    const ip = isRecord(a) ? str(a.ip) : undefined;
                    if (ip !== undefined) out.push({ field: `subsets[${i}].${list}[${j}].ip`, address: ip });
                });
            }
        });
    } else {
        arr(props.endpoints).forEach((e, i) => arr(isRecord(e) ? e.addresses : undefined).forEach((a, j) => {
            if (str(a) !== undefined) out.push({ field: `endpoints[${i}].addresses[${j}]`, address: str(a)! });
        }));
    }
    return out;
}

export interface EndpointFinding {
    urn: string;
    message: string;
}

/** The Service a hand-made Endpoints (by its name) or EndpointSlice (by its service-name label) gives addresses to. */
function serviceOf(r: StackResource): string | undefined {
    return ENDPOINTS.test(r.type) ? objectName(r.props, r.name) : metadataLabels(r.props)[SERVICE_NAME_LABEL];
}

/**
 * Endpoints and EndpointSlices the program declares: a Service without a selector takes its
 * addresses from them (and a slice labelled with a Service's name adds to any Service's), so they
 * route the cluster's traffic to any address, bypassing every check of what a Service selects.
 * - Always refused: an address of `specialAddress` (the node's metadata credentials, its loopback).
 * - Refused whatever the address when the Service is reachable from the edge (an Ingress backend in
 *   the namespace, or a LoadBalancer, NodePort or externalIPs Service): public traffic then goes to an
 *   address nothing in the pack judges, the node or control-plane network included, which the pack
 *   cannot tell from any other address. The edge routes to Services selecting the platform's pods.
 * Hand-made endpoints of an internal Service (a database outside the cluster at a private address)
 * are allowed. Values unknown during preview are skipped.
 */
export function handMadeEndpointFindings(resources: StackResource[]): EndpointFinding[] {
    const edge = new Set<string>();
    for (const { router: ing, targets } of routerTargets(resources)) {
        for (const t of targets) edge.add(`${t.namespace ?? namespaceOf(ing.props)}/${t.name}`);
    }
    const reach = new Map<string, string>();
    for (const svc of resources.filter((r) => r.type === K8S.service)) {
        const how = outsideReach(svc.props);
        if (how) reach.set(`${namespaceOf(svc.props)}/${objectName(svc.props, svc.name)}`, how);
    }
    const out: EndpointFinding[] = [];
    for (const r of endpointObjects(resources)) {
        const kind = r.type.split(":").pop();
        const who = `${kind} "${objectName(r.props, r.name)}"`;
        const addresses = endpointAddresses(r.type, r.props);
        for (const a of addresses) {
            const what = specialAddress(a.address);
            if (what) {
                out.push({
                    urn: r.urn,
                    message: `${who} sets ${a.field} to ${a.address} (${what}): whatever connects through its Service (a pod, or the ingress controller, ` +
                        "which proxies to endpoint addresses itself) reaches that address from its own node or pod, the node's cloud credentials and local ports included. " +
                        "Remove the address; give the Service a selector of the platform's pods.",
                });
            }
        }
        const service = serviceOf(r);
        if (service === undefined) continue;
        const key = `${namespaceOf(r.props)}/${service}`;
        const how = edge.has(key) ? "an Ingress routes to it" : reach.get(key);
        if (how === undefined) continue;
        const listed = addresses.map((a) => a.address).join(", ") || "addresses computed during preview";
        out.push({
            urn: r.urn,
            message: `${who} gives Service "${service}", which is reachable from outside the cluster (${how}), hand-made addresses (${listed}): ` +
                "public traffic goes wherever they point, past every check of what a Service selects. Route the edge to a Service with a selector " +
                "of the platform's pods, and delete the hand-made endpoints.",
        });
    }
    return out;
}

export const handMadeEndpoints: StackValidationPolicy = {
    name: "hand-made-endpoints",
    description:
        "Endpoints and EndpointSlices the program declares (a Service without a selector takes its addresses from them) never name the cloud " +
        "metadata address, link-local, loopback, unspecified or multicast addresses (IPv4, IPv6 and IPv4-mapped IPv6), and never give addresses " +
        "to a Service reachable from outside the cluster (an Ingress backend, a LoadBalancer, NodePort or externalIPs Service).",
    severity: "critical",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => isEndpoints(r.type))) args.notApplicable("no Endpoints or EndpointSlice in this stack");
        for (const f of handMadeEndpointFindings(resources)) reportViolation(f.message, f.urn);
    },
};
