/**
 * Session 49, red team round two: resources the pack passed that it should refuse, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 49".)
 */
import { describe, expect, it } from "vitest";
import { networkPolicy, prodStack } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

describe("network-policy-default-deny: a labelled podSelector in every namespace", () => {
    const pg = { matchLabels: { "trading.io/workload": "postgres" } };
    const clients = { matchLabels: { "trading.io/workload": "api-gateway" } };
    const head = (m: string) => m.split(", which undoes")[0];

    it("rejects ingress from a labelled podSelector under namespaceSelector {}, Exists on kubernetes.io/metadata.name, or one that only excludes", async () => {
        const open = networkPolicy("open", pg, ["Ingress"], {
            ingress: [
                { from: [{ namespaceSelector: {}, podSelector: clients }] },
                { from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "Exists" }] }, podSelector: clients }] },
                { from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system"] }] }, podSelector: clients }] },
            ],
        });
        const any = "a namespaceSelector matching every namespace, with podSelector {\"matchLabels\":{\"trading.io/workload\":\"api-gateway\"}}: " +
            "pods carrying those labels in any namespace, set by whoever creates the pod";
        expect((await messages("network-policy-default-deny", [...prodStack(), open])).map(head)).toEqual([
            `NetworkPolicy "open" in namespace "ai-trading" admits every source in ingress[0] (${any}), ingress[1] (${any}), ingress[2] (${any})`,
        ]);
    });

    it("keeps the same peer in egress (DNS to kube-dns by its labels in any namespace is the common rule) and a labelled namespace with a podSelector", async () => {
        const dns = networkPolicy("dns", pg, ["Egress"], { egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }] }] });
        const named = networkPolicy("named", pg, ["Ingress"], {
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } }, podSelector: { matchLabels: { app: "x" } } }] }],
        });
        expect(await messages("network-policy-default-deny", [...prodStack(), dns, named])).toEqual([]);
    });
});
