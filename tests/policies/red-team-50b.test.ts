/**
 * Session 50, red team follow-ups (50b): holes the round-three red team found and did not fix, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 50", its 50b rows.)
 */
import { describe, expect, it } from "vitest";
import { networkPolicy, prodStack } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

describe("network-policy-default-deny: egress ipBlocks holding the cluster's pod or Service ranges", () => {
    const engine = { matchLabels: { "trading.io/workload": "trading-engine" } };
    const pg = { matchLabels: { "trading.io/workload": "postgres" } };
    const to = (selector: Record<string, any>, ...blocks: Array<string | { cidr: string; except: string[] }>) =>
        networkPolicy("vpn", selector, ["Egress"], { egress: blocks.map((b) => ({ to: [{ ipBlock: typeof b === "string" ? { cidr: b } : b }], ports: [{ protocol: "TCP", port: 5432 }] })) });
    const run = async (np: TestResource, config: Parameters<typeof runPack>[1] = "prod") =>
        (await messages("network-policy-default-deny", [...prodStack(), np], config)).filter((m) => m.startsWith("NetworkPolicy \"vpn\""));
    const FIX = ": under a CNI that matches pod addresses against ipBlocks, every pod and Service there, in any namespace, past the per-peer egress rules; name in-cluster " +
        "destinations by podSelector and namespaceSelector (DNS: kube-system's pods on port 53), and add the cluster's ranges (podCidrs, serviceCidrs) to the ipBlock's except.";

    it("rejects an egress block holding prod.json's pod or Service range (a private host's /32 among the pods), except counted, in any spelling", async () => {
        const found = await run(to(pg, "10.244.3.7/32", { cidr: "10.0.0.0/8", except: ["10.244.0.0/16"] }, { cidr: "10.0.0.0/8", except: ["10.244.0.0/16", "10.96.0.0/12"] },
            "010.96.0.10/32", "::ffff:10.244.0.0/112", "10.8.0.5/32"));
        expect(found).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cluster's own addresses in egress[0] (ipBlock 10.244.3.7/32 holds the pod range 10.244.0.0/16), " +
            "egress[1] (ipBlock 10.0.0.0/8 holds the Service range 10.96.0.0/12), egress[3] (ipBlock 010.96.0.10/32 holds the Service range 10.96.0.0/12), " +
            `egress[4] (ipBlock ::ffff:10.244.0.0/112 holds the pod range 10.244.0.0/16)${FIX}`,
        ]);
    });

    it("judges an opted-in workload's internet rule too: 0.0.0.0/0 must except the cluster's ranges; the program's rule (private ranges excepted) and its DNS rule pass", async () => {
        const bare = await run(to(engine, "0.0.0.0/0", { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"] }));
        expect(bare).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cluster's own addresses in egress[0] (ipBlock 0.0.0.0/0 holds the pod range 10.244.0.0/16, " +
            `the Service range 10.96.0.0/12)${FIX}`,
            expect.stringContaining("NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cloud metadata service in egress[0] (ipBlock 0.0.0.0/0 reaches"),
        ]);
        // A policy not opted in: its wide block is reported as every destination, once.
        expect((await run(to(pg, "0.0.0.0/0"))).map((m) => m.split(" in egress")[0])).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach every destination",
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cloud metadata service",
        ]);
        // The program's policies (allow-dns by kube-system's namespace, internet rules minus the private ranges) under prod.json and with no config file.
        expect(await messages("network-policy-default-deny", prodStack())).toEqual([]);
        expect(await messages("network-policy-default-deny", prodStack(), { all: "mandatory" })).toEqual([]);
    });
});

describe("network-policy-default-deny: an IPv6 block covering ::ffff:0:0/96 written in IPv6 form holds every IPv4 address", () => {
    const pg = { matchLabels: { "trading.io/workload": "postgres" } };
    const run = async (np: TestResource) => (await messages("network-policy-default-deny", [...prodStack(), np])).filter((m) => m.startsWith("NetworkPolicy \"vpn\""));

    it("reports ::/80, ::/64 and 0:0:0:0:0:ffff::/96 as admitting every source and reaching every destination and the metadata service", async () => {
        const ingress = networkPolicy("vpn", pg, ["Ingress"], { ingress: ["::/80", "::/64", "0:0:0:0:0:FFFF::/96"].map((cidr) => ({ from: [{ ipBlock: { cidr } }] })) });
        expect((await run(ingress))[0]).toMatch(/^NetworkPolicy "vpn" in namespace "ai-trading" admits every source in ingress\[0\] \(ipBlock ::\/80\), ingress\[1\] \(ipBlock ::\/64\), ingress\[2\] \(ipBlock 0:0:0:0:0:FFFF::\/96\)/);
        const egress = networkPolicy("vpn", pg, ["Egress"], { egress: [{ to: [{ ipBlock: { cidr: "::/80", except: ["::ffff:10.0.0.0/104"] } }] }] });
        expect((await run(egress)).map((m) => m.split(":")[0])).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach every destination in egress[0] (ipBlock ",
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cloud metadata service in egress[0] (ipBlock ",
        ]);
        // The except (the mapped 10.0.0.0/8) keeps the cluster's ranges out, but not the metadata service: no cluster-range finding.
        expect((await run(egress)).some((m) => m.includes("cluster's own addresses"))).toBe(false);
    });

    it("counts a narrow IPv6 block holding the mapped range against the cluster's ranges (excepts in either form counted)", async () => {
        const cfg = { all: "mandatory" as const, "network-policy-default-deny": { podCidrs: ["10.244.0.0/16"], serviceCidrs: ["10.96.0.0/12"], internetEgressWorkloads: ["trading-engine"] } };
        const engine = { matchLabels: { "trading.io/workload": "trading-engine" } };
        const np = networkPolicy("vpn", engine, ["Egress"], { egress: [{ to: [{ ipBlock: { cidr: "::/80", except: ["169.254.0.0/16", "::ffff:100.64.0.0/106"] } }] }] });
        const found = (await messages("network-policy-default-deny", [...prodStack(), np], cfg)).filter((m) => m.startsWith("NetworkPolicy \"vpn\""));
        // The metadata ranges excepted, in IPv4 and in mapped form: the cluster's ranges alone are found (an opted-in, narrow-for-IPv6 block).
        expect(found.map((m) => m.split(":")[0])).toEqual(["NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cluster's own addresses in egress[0] (ipBlock "]);
        expect(found[0]).toContain("(ipBlock ::/80 holds the pod range 10.244.0.0/16, the Service range 10.96.0.0/12)");
    });
});

describe("ingress-no-external-forwarding: the ingress-nginx controller's tracing collectors", () => {
    const controller = (data: Record<string, string>): TestResource => ({
        type: "kubernetes:core/v1:ConfigMap", name: "ingress-nginx-controller",
        props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" }, data },
    });
    const FIX = ", past every NetworkPolicy (the controller makes the request): the clients' credentials and orders leave the platform. Name a Service of the cluster " +
        "(http://<service>.<namespace>.svc:<port>/...), or, for an identity provider the operator has chosen, list its host in this policy's allowedExternalTargets.";
    const SENDS = "a trace of every request to every Ingress of the controller (its URI, query tokens included, and headers)";

    it("rejects otlp-, zipkin-, jaeger-, datadog-collector-host and jaeger-endpoint outside the cluster, on an address or the controller's loopback", async () => {
        const found = await messages("ingress-no-external-forwarding", [controller({
            "otlp-collector-host": "otel.example.net", "zipkin-collector-host": "203.0.113.9", "jaeger-collector-host": "LOCALHOST",
            "datadog-collector-host": "2001:db8::7", "jaeger-endpoint": "https://traces.example.org:14268/api/traces", "otlp-collector-port": "4317",
        })]);
        const outside = (key: string, host: string) => `ConfigMap "ingress-nginx-controller" sets ${key} to a URL on ${host}, outside the cluster, so the controller sends it ${SENDS}${FIX}`;
        expect(found).toEqual([
            outside("otlp-collector-host", "otel.example.net"),
            outside("zipkin-collector-host", "203.0.113.9"),
            `ConfigMap "ingress-nginx-controller" sets jaeger-collector-host to a URL on localhost, the controller's own pod (its status and configuration endpoints listen on its loopback), ` +
            `so the controller sends them ${SENDS}${FIX}`,
            outside("datadog-collector-host", "[2001:db8::7]"),
            outside("jaeger-endpoint", "traces.example.org"),
        ]);
    });

    it("passes a collector Service of the cluster, and an outside collector listed in allowedExternalTargets", async () => {
        expect(await messages("ingress-no-external-forwarding", [controller({ "otlp-collector-host": "otel-collector.monitoring.svc.cluster.local", "zipkin-collector-host": "zipkin.monitoring.svc" })])).toEqual([]);
        const listing = { all: "mandatory" as const, "ingress-no-external-forwarding": { allowedExternalTargets: ["otel.example.net"] } };
        expect(await messages("ingress-no-external-forwarding", [controller({ "otlp-collector-host": "otel.example.net" })], listing)).toEqual([]);
    });
});
