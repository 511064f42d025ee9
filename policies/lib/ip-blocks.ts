/**
 * A NetworkPolicy's ipBlocks (pure), judged against the cluster's own address ranges and the cloud
 * metadata service, in either direction. Read as the API server reads them (`lib/cidr.ts`); rules and
 * blocks unknown during preview are skipped.
 */
import { metadataAddressesIn } from "./cloud-metadata";
import { isWideBlock, overlapsBeyond } from "./cidr";
import { arr, hasUnknown, isRecord, str } from "./values";

/** The cluster's pod and Service address ranges (network-policy-default-deny's `podCidrs`, `serviceCidrs`). */
export interface ClusterRanges { podCidrs: string[]; serviceCidrs: string[] }

/** Each known ipBlock of a direction's rules: the rule's index, its `cidr` and `except`. */
function ipBlocks(np: Record<string, any>, direction: "ingress" | "egress"): Array<{ i: number; cidr: string; except: string[] }> {
    const peersKey = direction === "ingress" ? "from" : "to";
    return arr(np.spec?.[direction]).flatMap((rule, i) => {
        if (!isRecord(rule) || hasUnknown(rule[peersKey])) return [];
        return arr(rule[peersKey]).filter(isRecord).flatMap((peer) => {
            const cidr = str(peer.ipBlock?.cidr)?.trim();
            if (cidr === undefined || hasUnknown(peer.ipBlock?.except)) return [];
            return [{ i, cidr, except: arr(peer.ipBlock?.except).map((e) => str(e)).filter((e): e is string => e !== undefined) }];
        });
    });
}

/**
 * Egress ipBlocks of a policy that let its pods reach a cloud metadata address, each as
 * `egress[i] (ipBlock <cidr> reaches <addresses>)`: an opted-in internet rule (`0.0.0.0/0` minus the
 * private ranges) still holds 169.254.169.254 (link-local) and 100.100.100.200 (shared address space),
 * and a pod that asks there gets the node's cloud credentials. Reported for every policy, opted-in
 * or not, and for narrow blocks too (a /32 of the address itself).
 */
export function metadataEgressRules(np: Record<string, any>): string[] {
    return ipBlocks(np, "egress").flatMap(({ i, cidr, except }) => {
        const reached = metadataAddressesIn(cidr, except);
        return reached.length > 0 ? [`egress[${i}] (ipBlock ${cidr} reaches ${reached.join(", ")})`] : [];
    });
}

/**
 * Session 50: ipBlocks holding addresses of the cluster's pods or Services (`except` taken off), each as
 * `<direction>[i] (ipBlock <cidr> holds the pod range <range>)`. Whether a CNI matches pod addresses against
 * ipBlocks is left to the implementation: where it does, an ingress block admits every pod of the cluster
 * in it, by address, past every label, and (session 50b) an egress block reaches every pod and Service in
 * it past the per-peer egress rules (a private host's /32 inside the pod range is whichever pod holds that
 * address). Wide blocks are judged only when `judgeWide` (those not reported as every source or destination
 * already: an opted-in internet egress rule).
 */
export function clusterRangeRules(np: Record<string, any>, cfg: ClusterRanges, direction: "ingress" | "egress", judgeWide = false): string[] {
    const ranges = [...cfg.podCidrs.map((c) => `pod range ${c}`), ...cfg.serviceCidrs.map((c) => `Service range ${c}`)];
    return ipBlocks(np, direction).flatMap(({ i, cidr, except }) => {
        if (!judgeWide && isWideBlock(cidr)) return [];
        const held = ranges.filter((r) => overlapsBeyond(cidr, except, r.split(" ").pop()!));
        return held.length > 0 ? [`${direction}[${i}] (ipBlock ${cidr} holds the ${held.join(", the ")})`] : [];
    });
}
