import { ResourceValidationPolicy } from "@pulumi/policy";
import { catalog } from "../../catalog/services";
import { readConfig } from "../lib/config";
import { forEveryWorkload, Workload } from "../lib/rule";
import { arr, isRecord, str } from "../lib/values";
import { DATASTORES, MONITORING } from "../lib/workloads";

export interface ClusterDnsConfig {
    /** Nameserver addresses a pod may name itself (the cluster DNS Service's, a node-local cache's); none by default. */
    clusterNameservers: string[];
}

const defaults: ClusterDnsConfig = { clusterNameservers: [] };

/**
 * Names a pod must not resolve by itself: the cluster's own (a single label, which the search path
 * turns into a Service of the namespace; `*.svc`, `*.cluster.local`; `kubernetes`, the API server), the
 * platform's workloads under any suffix (`postgres`, `postgres.ai-trading`), the loopback names, and
 * the cloud metadata hosts.
 */
const PLATFORM_NAMES: readonly string[] = ["kubernetes", ...catalog.map((s) => s.name), ...DATASTORES, ...MONITORING];
const METADATA_HOSTS: readonly string[] = ["metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"];

export function isRebindableName(host: string): boolean {
    const name = host.trim().toLowerCase().replace(/\.$/, "");
    const labels = name.split(".");
    return labels.length === 1
        || PLATFORM_NAMES.includes(labels[0])
        || /(^|\.)(svc|cluster\.local|localhost)$/.test(name) || labels.includes("svc")
        || METADATA_HOSTS.includes(name);
}

/**
 * How a pod resolves names past the cluster DNS (and so past DNS-based egress policy, the DNS logs
 * monitoring reads, and the names the platform's own traffic trusts):
 * - `dnsPolicy: None` with `dnsConfig.nameservers`, or `dnsConfig.nameservers` added under any other
 *   policy (appended to resolv.conf; musl's resolver asks every nameserver at once and takes the first
 *   answer, glibc's the next one whenever the first is slow), naming a server not in `clusterNameservers`;
 * - `dnsPolicy: Default`: the node's resolvers, none of the cluster's (hostNetwork, which implies it, is
 *   no-privileged-containers');
 * - `hostAliases` (Docker: `hosts`) binding a name of the cluster or the platform, or a cloud metadata
 *   host: `postgres` pointed at another address receives the services' database credentials. Aliases of
 *   other names are left alone (TLS still checks them).
 */
export function dnsBypasses(w: Workload, cfg: ClusterDnsConfig = defaults): string[] {
    const out: string[] = [];
    const aliases: Array<{ field: string; ip?: string; hosts: string[] }> = [];
    if (w.target === "docker") {
        arr(w.props.hosts).filter(isRecord).forEach((h, i) => aliases.push({ field: `hosts[${i}]`, ip: str(h.ip), hosts: [str(h.host)].filter((n): n is string => !!n) }));
    } else if (w.pod) {
        const spec = w.pod.spec;
        const policy = str(spec.dnsPolicy);
        const servers = arr(spec.dnsConfig?.nameservers).map((n) => str(n)).filter((n): n is string => n !== undefined);
        const outside = servers.filter((n) => !cfg.clusterNameservers.includes(n.trim()));
        if (outside.length) {
            out.push(`${policy === "None" ? "sets dnsPolicy: None and resolves" : "adds dnsConfig.nameservers, so it resolves"} names through ${outside.join(", ")}, past the cluster DNS`);
        }
        if (policy === "Default") out.push("sets dnsPolicy: Default, so it resolves names through the node's resolvers, past the cluster DNS");
        arr(spec.hostAliases).filter(isRecord).forEach((a, i) => aliases.push({
            field: `hostAliases[${i}]`, ip: str(a.ip), hosts: arr(a.hostnames).map((n) => str(n)).filter((n): n is string => !!n),
        }));
    }
    for (const a of aliases) {
        const rebound = a.hosts.filter(isRebindableName);
        if (rebound.length) out.push(`${a.field} binds ${rebound.join(", ")} to ${a.ip ?? "an address computed during preview"}, past the cluster DNS`);
    }
    return out;
}

export const clusterDnsOnly: ResourceValidationPolicy = {
    name: "cluster-dns-only",
    description:
        "Pods resolve names through the cluster DNS: no dnsPolicy None or dnsConfig.nameservers naming a server outside clusterNameservers, " +
        "no dnsPolicy Default (the node's resolvers); no hostAliases (Docker hosts) binding a cluster or platform name (a single label, *.svc, " +
        "*.cluster.local, kubernetes, postgres.<namespace>, ...), localhost or a cloud metadata host.",
    severity: "high",
    configSchema: {
        properties: { clusterNameservers: { type: "array", items: { type: "string" }, default: defaults.clusterNameservers } },
    },
    validateResource: forEveryWorkload((w, args, reportViolation) => {
        for (const p of dnsBypasses(w, readConfig(args, defaults))) {
            reportViolation(`${w.label} ${p}, so its lookups escape DNS-based egress policy and the cluster's DNS logs, and the platform's names can be pointed elsewhere. ` +
                "Leave dnsPolicy at ClusterFirst without nameservers of its own (a cluster resolver's address goes in the policy's clusterNameservers) and drop the alias: " +
                "the platform's names resolve through the cluster DNS.");
        }
    }),
};
