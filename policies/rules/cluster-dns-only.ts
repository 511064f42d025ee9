import { isIP } from "node:net";
import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { catalog } from "../../catalog/services";
import { readConfig } from "../lib/config";
import { isUnder } from "../lib/public-names";
import { forEveryWorkload, Workload } from "../lib/rule";
import { arr, isRecord, isUnknown, plain, str } from "../lib/values";
import { DATASTORES, describe, MONITORING, objectName } from "../lib/workloads";

export interface ClusterDnsConfig {
    /**
     * Nameserver addresses a workload may name itself (the cluster DNS Service's, a node-local cache's; on
     * Docker, session 44, a resolver the operator runs for the engine's embedded DNS to forward to); none by default.
     */
    clusterNameservers: string[];
    /**
     * Session 44: search domains a workload may add beyond the cluster's own (`*.svc`, `cluster.local`): a
     * zone the operator holds. None by default.
     */
    allowedSearchDomains: string[];
}

const defaults: ClusterDnsConfig = { clusterNameservers: [], allowedSearchDomains: [] };

/**
 * Session 44: search domains outside the cluster's own and the listed ones. A resolver tries a name
 * under each search domain: on Kubernetes (ndots 5) every name with fewer than five dots, external
 * ones too, before the name itself; with Docker's embedded DNS (ndots 0) a name it does not find (a
 * peer that is down or switched off, a typo). Whoever holds that domain answers with an address of
 * their choosing (a wildcard record), and the platform's traffic, credentials included, goes there.
 */
function outsideSearchDomains(searches: unknown, cfg: ClusterDnsConfig, clusterOwn: readonly string[]): string[] {
    return arr(searches).map((d) => str(d)).filter((d): d is string => d !== undefined && d.trim() !== "")
        .filter((d) => ![...clusterOwn, ...cfg.allowedSearchDomains].some((own) => isUnder(d, own)));
}

/**
 * Session 45: the resolver option `ndots` decides whether a name is first asked as it stands or first
 * tried under each search domain, and it was not judged (Docker `dnsOpts`, Kubernetes
 * `dnsConfig.options`):
 * - Kubernetes: below 2, a name with a dot (`postgres.ai-trading`, a Service of another namespace; at 0
 *   a single label such as `postgres` too) is first asked as it stands, which the cluster DNS forwards
 *   to the resolvers outside: the platform's names leak there, and one under a namespace named as a
 *   public TLD (app, dev, trading) is answered by whoever registered it. The cluster's own is 5; under
 *   `dnsPolicy: None` without the option, the resolver's default 1 applies. An `ndots` without a value
 *   (which the resolver ignores, kubelet's 5 replaced by it: the default 1) or not a whole number
 *   (glibc reads 0) is as low.
 * - Docker: the embedded DNS sets ndots:0 (every name asked as it stands first, the containers' names
 *   answered by the engine). A positive ndots without `dnsSearches` of the container's own sends a
 *   name (a peer such as `postgres`, `api.binance.com`) first under the host's search domains, copied
 *   from its resolv.conf, out of the pack's sight and often handed out by DHCP, whose holder answers.
 * `timeout`, `attempts`, `rotate`, `edns0`, `single-request` and the rest change how long or how a
 * lookup is tried, not who answers it: not judged.
 */
function ndotsOption(value: unknown): { text: string; n: number } | undefined {
    if (isUnknown(value)) return undefined;
    const v = str(value)?.trim() ?? (typeof value === "number" ? String(value) : undefined);
    if (v === undefined || v === "") return { text: "ndots without a value (which the resolver ignores, so its default ndots 1 applies)", n: 1 };
    if (!/^\d+$/.test(v)) return { text: `ndots:${v}, not a whole number (glibc reads 0)`, n: 0 };
    return { text: `ndots:${v}`, n: Math.min(Number(v), 15) };
}

function ndotsProblems(w: Workload): string[] {
    if (w.target === "docker") {
        const opts = arr(w.props.dnsOpts).map((o) => str(o)?.trim()).filter((o): o is string => o !== undefined && /^ndots(:|$)/.test(o));
        if (opts.length === 0) return [];
        const nd = ndotsOption(opts[opts.length - 1].replace(/^ndots:?/, ""));
        const own = arr(w.props.dnsSearches).some((d) => isUnknown(d) || (str(d) ?? "").trim() !== "");
        if (!nd || nd.n === 0 || own) return [];
        return [`sets dnsOpts ${nd.text} without search domains of its own, so a name with fewer dots (a peer such as postgres, api.binance.com) is first looked up under ` +
            "the host's search domains (copied from its resolv.conf, out of the pack's sight, often handed out by DHCP), whose holder answers with an address of their choosing"];
    }
    if (!w.pod) return [];
    const spec = w.pod.spec;
    const opts = arr(spec.dnsConfig?.options).filter((o) => isRecord(o) && str(o.name)?.trim() === "ndots");
    const nd = opts.length ? ndotsOption(opts[opts.length - 1].value)
        : str(spec.dnsPolicy) === "None" ? { text: "dnsPolicy: None without an ndots option (the resolver's default ndots 1)", n: 1 } : undefined;
    if (!nd || nd.n >= 2) return [];
    const what = nd.n === 0 ? "every name, a single label such as postgres included," : "a name with a dot (postgres.ai-trading, a Service of another namespace)";
    return [`sets ${opts.length ? "dnsConfig.options " : ""}${nd.text}, so ${what} is first asked as it stands, which the cluster DNS forwards to the resolvers outside: ` +
        "the platform's names leak there, and one under a namespace named as a public TLD (app, dev, trading) is answered by whoever registered it"];
}

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
 * - session 44: `dnsConfig.searches` (Docker `dnsSearches`) naming a domain outside the cluster's, and
 *   Docker `dns` servers not in `clusterNameservers` (the embedded DNS forwards every name it does not
 *   hold to them, past the host's resolvers).
 * - session 45: an `ndots` that sends the platform's names to outside resolvers first (see ndotsProblems).
 */
export function dnsBypasses(w: Workload, cfg: ClusterDnsConfig = defaults): string[] {
    const out: string[] = [];
    const aliases: Array<{ field: string; ip?: string; hosts: string[] }> = [];
    if (w.target === "docker") {
        arr(w.props.hosts).filter(isRecord).forEach((h, i) => aliases.push({ field: `hosts[${i}]`, ip: str(h.ip), hosts: [str(h.host)].filter((n): n is string => !!n) }));
        const servers = arr(w.props.dns).map((n) => str(n)).filter((n): n is string => n !== undefined && n.trim() !== "");
        const outside = servers.filter((n) => !cfg.clusterNameservers.includes(n.trim()));
        if (outside.length) out.push(`sets dns ${outside.join(", ")}, so the engine's embedded DNS forwards every name it does not hold there, past the host's resolvers`);
        const searches = outsideSearchDomains(w.props.dnsSearches, cfg, []);
        if (searches.length) {
            out.push(`sets dnsSearches ${searches.join(", ")}, so a name the embedded DNS does not find (a peer that is down or switched off, a typo) is looked up ` +
                "under that domain, whose holder answers with an address of their choosing");
        }
    } else if (w.pod) {
        const spec = w.pod.spec;
        const policy = str(spec.dnsPolicy);
        const servers = arr(spec.dnsConfig?.nameservers).map((n) => str(n)).filter((n): n is string => n !== undefined);
        const outside = servers.filter((n) => !cfg.clusterNameservers.includes(n.trim()));
        if (outside.length) {
            out.push(`${policy === "None" ? "sets dnsPolicy: None and resolves" : "adds dnsConfig.nameservers, so it resolves"} names through ${outside.join(", ")}, past the cluster DNS`);
        }
        if (policy === "Default") out.push("sets dnsPolicy: Default, so it resolves names through the node's resolvers, past the cluster DNS");
        const searches = outsideSearchDomains(spec.dnsConfig?.searches, cfg, ["svc", "cluster.local"]);
        if (searches.length) {
            out.push(`sets dnsConfig.searches ${searches.join(", ")}, outside the cluster's domains, so every name with fewer than five dots (api.binance.com, ` +
                "a peer that is switched off) is first looked up under that domain, whose holder answers with an address of their choosing");
        }
        arr(spec.hostAliases).filter(isRecord).forEach((a, i) => aliases.push({
            field: `hostAliases[${i}]`, ip: str(a.ip), hosts: arr(a.hostnames).map((n) => str(n)).filter((n): n is string => !!n),
        }));
    }
    for (const a of aliases) {
        const rebound = a.hosts.filter(isRebindableName);
        if (rebound.length) out.push(`${a.field} binds ${rebound.join(", ")} to ${a.ip ?? "an address computed during preview"}, past the cluster DNS`);
    }
    return [...out, ...ndotsProblems(w)];
}

/**
 * Session 44: a Service of type ExternalName is a DNS alias the cluster DNS serves to every pod (a
 * CNAME): named as a platform workload (`postgres`, a catalog service, `prometheus`, `kubernetes`), the
 * platform's clients of that name connect wherever it points, with the credentials their URLs carry,
 * as a hostAliases entry would send them; pointing at a cloud metadata host or an IP address (which
 * the cluster DNS hands out as a name), it aliases the node's credentials or an address no selector
 * judges. An ExternalName of any other name to an outside host is left alone (TLS still checks it);
 * as an Ingress backend it is ingress-internal-backends'.
 */
export function externalNameProblems(props: Record<string, any>, resourceName: string): string[] {
    if (str(props.spec?.type) !== "ExternalName") return [];
    const name = objectName(props, resourceName);
    const target = str(props.spec?.externalName);
    const out: string[] = [];
    if (PLATFORM_NAMES.includes(name.toLowerCase())) {
        out.push(`is of type ExternalName under the platform name "${name}", so every pod asking for ${name} is sent to ${target ?? "a name computed during preview"}, past the cluster DNS`);
    }
    if (target !== undefined) {
        const bare = target.trim().toLowerCase().replace(/\.$/, "");
        if (METADATA_HOSTS.includes(bare)) out.push(`points its ExternalName at the cloud metadata host ${target}`);
        else if (isIP(bare) !== 0) out.push(`points its ExternalName at the address ${target}, which no selector judges`);
    }
    return out;
}

export const clusterDnsOnly: ResourceValidationPolicy = {
    name: "cluster-dns-only",
    description:
        "Pods resolve names through the cluster DNS: no dnsPolicy None or dnsConfig.nameservers naming a server outside clusterNameservers, " +
        "no dnsPolicy Default (the node's resolvers); no hostAliases (Docker hosts) binding a cluster or platform name (a single label, *.svc, " +
        "*.cluster.local, kubernetes, postgres.<namespace>, ...), localhost or a cloud metadata host; no search domain (dnsConfig.searches, Docker " +
        "dnsSearches) outside the cluster's and allowedSearchDomains, no Docker dns server outside clusterNameservers, no ExternalName Service under a " +
        "platform name or aliasing a metadata host or an address (session 44); no ndots below 2 on Kubernetes (dnsConfig.options, dnsPolicy None), " +
        "none above 0 on Docker (dnsOpts) without dnsSearches of its own (session 45).",
    severity: "high",
    configSchema: {
        properties: {
            clusterNameservers: { type: "array", items: { type: "string" }, default: defaults.clusterNameservers },
            allowedSearchDomains: { type: "array", items: { type: "string" }, default: defaults.allowedSearchDomains },
        },
    },
    validateResource: [forEveryWorkload((w, args, reportViolation) => {
        for (const p of dnsBypasses(w, readConfig(args, defaults))) {
            if (p.includes("ndots")) {
                reportViolation(`${w.label} ${p}. Leave ndots alone (the cluster's 5, the Docker embedded DNS's 0) or, on Kubernetes, no lower than 2; ` +
                    "on Docker, a container that needs one declares its search domains in dnsSearches.");
            } else if (p.includes("dnsSearches") || p.includes("dnsConfig.searches")) {
                reportViolation(`${w.label} ${p}. Drop the search domain and name outside hosts in full (a zone the operator holds goes in the policy's ` +
                    "allowedSearchDomains).");
            } else if (p.startsWith("sets dns ")) {
                reportViolation(`${w.label} ${p}, so its lookups escape DNS-based egress control and logging, and an outside server answers for every name. ` +
                    "Drop dns and let the engine use the host's resolvers (a resolver the operator runs goes in the policy's clusterNameservers).");
            } else {
                reportViolation(`${w.label} ${p}, so its lookups escape DNS-based egress policy and the cluster's DNS logs, and the platform's names can be pointed elsewhere. ` +
                    "Leave dnsPolicy at ClusterFirst without nameservers of its own (a cluster resolver's address goes in the policy's clusterNameservers) and drop the alias: " +
                    "the platform's names resolve through the cluster DNS.");
            }
        }
    }), validateResourceOfType(k8s.core.v1.Service, (svc, args, reportViolation) => {
        for (const p of externalNameProblems(plain(svc as Record<string, any>), args.name)) {
            reportViolation(`${describe(args.type, args.name)} ${p}: the platform's clients (and their credentials) follow the alias. ` +
                "Give the platform's names to Services selecting the platform's pods, and name an outside host in full where it is used.");
        }
    })],
};