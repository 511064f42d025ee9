/**
 * Session 50, red team round three: resources the pack passed that it should refuse, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 50".)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, ingress, networkPolicy, NS, prodStack, replace, service, statefulSet } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: [policy] })).map((v) => v.message);

describe("allowed-storage-drivers: a claim naming no StorageClass (the cluster's default)", () => {
    const claim = (name: string, storageClassName?: string | null): TestResource => ({
        type: "kubernetes:core/v1:PersistentVolumeClaim", name,
        props: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: NS }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, storageClassName } },
    });
    const classless = edit(statefulSet("clickhouse", "datastore", "clickhouse/clickhouse-server:24.8.4.13", 8123, 101), (p) => { delete p.spec.volumeClaimTemplates[0].spec.storageClassName; });
    const scratch = edit(deployment("api-gateway", 3001), (p) => {
        p.spec.template.spec.volumes.push({ name: "scratch", ephemeral: { volumeClaimTemplate: { spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } } } });
    });
    const refused = (who: string, by: string) => `${who} names no storageClassName, so it is provisioned by ${by}; name a declared or listed StorageClass in storageClassName, ` +
        "or set defaultStorageClass to the cluster's default class and list it in allowedStorageClasses once its provisioner is reviewed.";
    const ANY = "whichever class the cluster marks default when the claim is made (none, or one whose provisioner the pack never sees)";

    it("rejects a PVC, a StatefulSet claim template and a generic ephemeral volume naming no class, whatever allowedStorageClasses holds", async () => {
        const rs = [claim("data"), claim("nulled", null), classless, scratch];
        const expected = [
            refused("PersistentVolumeClaim \"data\"", ANY),
            refused("PersistentVolumeClaim \"nulled\"", ANY),
            refused("StatefulSet \"clickhouse-statefulset\" volumeClaimTemplates[0] (data)", ANY),
            refused("Deployment \"api-gateway-deployment\" ephemeral volume \"scratch\"", ANY),
        ];
        expect(await messages("allowed-storage-drivers", rs)).toEqual(expected);
        expect(await messages("allowed-storage-drivers", rs, { all: "mandatory" })).toEqual(expected);
        // The platform's claims name the stack's class (trading:storageClass): prod passes.
        expect(await messages("allowed-storage-drivers", prodStack())).toEqual([]);
    });

    it("judges such a claim as one of defaultStorageClass (declared or listed), or of the StorageClass the stack declares as default", async () => {
        const cfg = (defaultStorageClass: string, allowedStorageClasses: string[] = []) =>
            ({ all: "mandatory" as const, "allowed-storage-drivers": { allowedStorageDrivers: ["ebs.csi.aws.com"], allowedStorageClasses, defaultStorageClass } });
        expect(await messages("allowed-storage-drivers", [claim("data")], cfg("standard", ["standard"]))).toEqual([]);
        // Named but not reviewed: refused, even with no list (an explicit class is judged only once the list holds any).
        expect(await messages("allowed-storage-drivers", [claim("data")], cfg("microk8s-hostpath"))).toEqual([
            refused("PersistentVolumeClaim \"data\"", "the cluster's default class \"microk8s-hostpath\" (defaultStorageClass), which the stack does not declare and allowedStorageClasses does not list"),
        ]);
        // A declared default class: the claim is its, and its provisioner is judged with the claim named.
        const declared = (provisioner: string, annotation = "storageclass.kubernetes.io/is-default-class"): TestResource => ({
            type: "kubernetes:storage.k8s.io/v1:StorageClass", name: "node-disk",
            props: { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "node-disk", annotations: { [annotation]: "true" } }, provisioner },
        });
        expect(await messages("allowed-storage-drivers", [claim("data"), declared("rancher.io/local-path", "storageclass.beta.kubernetes.io/is-default-class")], cfg(""))).toEqual([
            "StorageClass \"node-disk\" provisions with rancher.io/local-path, not in allowedStorageDrivers (claimed by PersistentVolumeClaim \"data\"): a CSI driver decides what it " +
            "mounts (a secrets store fetches secrets with the node's identity, a host-path driver a directory of the node) past every pod check: use a reviewed driver, or list " +
            "this one in allowedStorageDrivers once reviewed.",
        ]);
        expect(await messages("allowed-storage-drivers", [claim("data"), declared("ebs.csi.aws.com")], cfg("", ["standard"]))).toEqual([]);
    });
});

describe("network-policy-default-deny: ipBlocks holding the cluster's own addresses, in any spelling the API server reads", () => {
    const pg = { matchLabels: { "trading.io/workload": "postgres" } };
    const from = (...blocks: Array<string | { cidr: string; except: string[] }>) =>
        networkPolicy("vpn", pg, ["Ingress"], { ingress: blocks.map((b) => ({ from: [{ ipBlock: typeof b === "string" ? { cidr: b } : b }], ports: [{ protocol: "TCP", port: 5432 }] })) });
    const FIX = ": under a CNI that matches pod addresses against ipBlocks, every pod there, in any namespace, past the namespace's default deny; name in-cluster " +
        "clients by podSelector and namespaceSelector, and add the cluster's ranges (podCidrs, serviceCidrs) to the ipBlock's except.";
    const run = async (np: TestResource, config: Parameters<typeof runPack>[1] = "prod") =>
        (await messages("network-policy-default-deny", [...prodStack(), np], config)).filter((m) => m.startsWith("NetworkPolicy \"vpn\""));

    it("rejects an ingress ipBlock holding prod.json's pod or Service range, the except list taken off, and the same in leading-zero or IPv4-mapped IPv6 spelling", async () => {
        const np = from("10.0.0.0/8", { cidr: "10.0.0.0/8", except: ["10.244.0.0/16"] }, { cidr: "10.0.0.0/8", except: ["10.244.0.0/16", "10.96.0.0/12"] },
            "010.244.7.0/24", "::ffff:10.96.0.10/128", "10.8.0.0/16");
        expect(await run(np)).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" admits the cluster's own addresses in " +
            "ingress[0] (ipBlock 10.0.0.0/8 holds the pod range 10.244.0.0/16, the Service range 10.96.0.0/12), ingress[1] (ipBlock 10.0.0.0/8 holds the Service range 10.96.0.0/12), " +
            `ingress[3] (ipBlock 010.244.7.0/24 holds the pod range 10.244.0.0/16), ingress[4] (ipBlock ::ffff:10.96.0.10/128 holds the Service range 10.96.0.0/12)${FIX}`,
        ]);
        // Without a config file the cluster's ranges are unknown: every private range counts, the VPN's 10.8.0.0/16 too.
        expect((await run(from("10.8.0.0/16", "192.168.10.0/24", "203.0.113.0/24"), { all: "mandatory" }))[0]).toContain(
            "ingress[0] (ipBlock 10.8.0.0/16 holds the pod range 10.0.0.0/8), ingress[1] (ipBlock 192.168.10.0/24 holds the pod range 192.168.0.0/16):");
    });

    it("judges IPv6 ranges in any spelling (zero-padded, upper case), and IPv4 spelt as mapped IPv6 for wide blocks and the metadata service", async () => {
        const cfg = { all: "mandatory" as const, "network-policy-default-deny": { podCidrs: ["fd00:10:244::/56"], serviceCidrs: ["fd00:10:96::/112"] } };
        const found = await run(from("FD00:0010:0244:0000::/64", { cidr: "fd00:10::/32", except: ["fd00:10:244::/56"] }, "fd00:10:97::/48"), cfg);
        expect(found).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" admits the cluster's own addresses in ingress[0] (ipBlock FD00:0010:0244:0000::/64 holds the pod range fd00:10:244::/56), " +
            `ingress[1] (ipBlock fd00:10::/32 holds the Service range fd00:10:96::/112)${FIX}`,
        ]);
        // ::ffff:0.0.0.0/96 is every IPv4 address: admits every source, as 0.0.0.0/0 does.
        expect((await run(from("::ffff:0.0.0.0/96")))[0]).toMatch(/^NetworkPolicy "vpn" in namespace "ai-trading" admits every source in ingress\[0\] \(ipBlock ::ffff:0.0.0.0\/96\)/);
        // Egress to the metadata service by its leading-zero or mapped spelling: the node's cloud credentials.
        const egress = networkPolicy("vpn", pg, ["Egress"], { egress: [{ to: [{ ipBlock: { cidr: "0169.254.169.254/32" } }, { ipBlock: { cidr: "::ffff:169.254.169.254/128" } }] }] });
        expect((await run(egress)).map((m) => m.split(", which hands")[0])).toEqual([
            "NetworkPolicy \"vpn\" in namespace \"ai-trading\" lets its pods reach the cloud metadata service in egress[0] (ipBlock 0169.254.169.254/32 reaches 169.254.169.254), " +
            "egress[0] (ipBlock ::ffff:169.254.169.254/128 reaches 169.254.169.254)",
        ]);
    });
});

describe("ingress-no-external-forwarding: a pod's address name as a forwarding target", () => {
    const MIRROR = "nginx.ingress.kubernetes.io/mirror-target";
    const AUTH = "nginx.ingress.kubernetes.io/auth-url";
    const annotated = (extra: Record<string, string>) => ingress({ annotations: { ...ingress().props.metadata.annotations, ...extra } });
    const FIX = ", past every NetworkPolicy (the controller makes the request): the clients' credentials and orders leave the platform. Name a Service of the cluster " +
        "(http://<service>.<namespace>.svc:<port>/...), or, for an identity provider the operator has chosen, list its host in this policy's allowedExternalTargets.";
    const pod = (where: string, host: string, what: string) => `sets ${where} to a URL on ${host}, a pod's address name, which the cluster DNS answers with the address ` +
        `written in it (any pod's, or with CoreDNS's pods insecure any address at all): no Service stands behind it to judge, so the controller sends whatever it names ${what}${FIX}`;
    const COPY = "a copy of every request, its body, Authorization header and cookies included";
    const HEADERS = "the headers of every request (its Authorization header and cookies)";

    it("rejects <a-b-c-d>.<ns>.pod[.cluster.local] in mirror-target, auth-url and global-auth-url, in any case and with a trailing dot", async () => {
        const found = await messages("ingress-no-external-forwarding", [
            annotated({ [MIRROR]: "http://10-244-0-17.ai-trading.pod.cluster.local:5432$request_uri", [AUTH]: "http://169-254-169-254.Default.POD./latest/meta-data" }),
        ]);
        expect(found).toEqual([
            `Ingress "nginx-ingress" ${pod(`the annotation ${MIRROR}`, "10-244-0-17.ai-trading.pod.cluster.local", COPY)}`,
            `Ingress "nginx-ingress" ${pod(`the annotation ${AUTH}`, "169-254-169-254.default.pod.", HEADERS)}`,
        ]);
        const controller: TestResource = {
            type: "kubernetes:core/v1:ConfigMap", name: "ingress-nginx-controller",
            props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" }, data: { "global-auth-url": "http://10-244-0-9.monitoring.pod.cluster.local.:9090/" } },
        };
        expect(await messages("ingress-no-external-forwarding", [controller])).toEqual([
            `ConfigMap "ingress-nginx-controller" ${pod("global-auth-url", "10-244-0-9.monitoring.pod.cluster.local.", "the headers of every request to every Ingress of the controller (their Authorization header and cookies)")}`,
        ]);
        // Any other name of the cluster's zone is no Service either: judged as a host outside.
        expect((await messages("ingress-no-external-forwarding", [annotated({ [MIRROR]: "http://collector.cluster.local/" })]))[0]).toContain("to a URL on collector.cluster.local, outside the cluster");
        // A Service of the cluster still passes.
        expect(await messages("ingress-no-external-forwarding", [annotated({ [MIRROR]: "http://audit-sink.tools.svc.cluster.local./copy" })])).toEqual([]);
    });

    it("rejects a loopback name (the controller's own status and configuration endpoints) and a host built from nginx variables the request fills in", async () => {
        const found = await messages("ingress-no-external-forwarding", [
            annotated({ [MIRROR]: "http://LOCALHOST.:10246/configuration/backends", [AUTH]: "http://$remote_user.ai-trading.svc:5432/" }),
            edit(annotated({ [MIRROR]: "https://$host.collector.example.net$request_uri", [AUTH]: "http://ip6-localhost:10254/metrics" }), (p) => { p.metadata.name = "second"; }),
        ]);
        const self = (where: string, host: string, what: string) =>
            `sets ${where} to a URL on ${host}, the controller's own pod (its status and configuration endpoints listen on its loopback), so the controller sends them ${what}${FIX}`;
        const built = (where: string, host: string, what: string) =>
            `sets ${where} to a URL on ${host}, a host built from nginx variables, which the request fills in (any Service, any host), so the controller sends wherever it decides ${what}${FIX}`;
        expect(found).toEqual([
            `Ingress "nginx-ingress" ${self(`the annotation ${MIRROR}`, "localhost.", COPY)}`,
            `Ingress "nginx-ingress" ${built(`the annotation ${AUTH}`, "$remote_user.ai-trading.svc", HEADERS)}`,
            `Ingress "nginx-ingress" ${built(`the annotation ${MIRROR}`, "$host.collector.example.net", COPY)}`,
            `Ingress "nginx-ingress" ${self(`the annotation ${AUTH}`, "ip6-localhost", HEADERS)}`,
        ]);
        // The edge itself ($host alone, a path variable after it) still passes.
        expect(await messages("ingress-no-external-forwarding", [annotated({ [MIRROR]: "https://$host$request_uri", [AUTH]: "https://${host}/oauth2/auth" })])).toEqual([]);
    });

    it("already judges a headless Service's pod name by the Service's selector, in any case and with a trailing dot", async () => {
        const reports = edit(service("reports", "service", 5432), (p) => { p.spec.selector = { "trading.io/workload": "postgres" }; p.spec.clusterIP = "None"; });
        const rs = [...replace(prodStack(), "nginx-ingress", (p) => { p.metadata.annotations[MIRROR] = "https://POSTGRES-0.Reports.AI-TRADING.svc.cluster.local.:5432/"; }), reports];
        expect((await messages("ingress-internal-backends", rs)).map((m) => m.split(";")[0])).toEqual([
            `Ingress "ai-trading" routes public traffic to Service "reports" (by the annotation ${MIRROR}), which selects the pods of postgres`,
        ]);
    });
});

describe("no-unchecked-workloads, protected-namespaces: a custom resource of a version or Kind spelt outside v1beta1 and CamelCase", () => {
    const runner = (namespace: string): TestResource => ({
        type: "kubernetes:runners.example.com/stable:Pod-Runner", name: "runner",
        props: {
            apiVersion: "runners.example.com/stable", kind: "Pod-Runner", metadata: { name: "runner", namespace },
            spec: { template: { spec: { containers: [{ name: "x", image: "docker.io/library/busybox:1.36", securityContext: { privileged: true } }] } } },
        },
    });

    it("rejects its image (its controller runs pods no policy reads) and its landing in kube-system, as for a CRD version v1alpha1", async () => {
        expect(await messages("no-unchecked-workloads", [runner(NS)])).toEqual([
            "Pod-Runner \"runner\" names the image \"docker.io/library/busybox:1.36\" (spec.template.spec.containers[0].image), which its controller runs in pods no policy of this " +
            "pack checks (the pod policies read Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and Pods of the served versions); run them from one of those.",
        ]);
        expect((await messages("protected-namespaces", [runner("kube-system")])).map((m) => m.split(":")[0])).toEqual([expect.stringContaining("Pod-Runner \"runner\"")]);
        // Pulumi's own component types stay out: they are no API objects.
        expect(await messages("no-unchecked-workloads", [{ type: "kubernetes:yaml:ConfigFile", name: "f", props: { file: "x.yaml" } }])).toEqual([]);
    });
});

describe("ingress-no-external-forwarding, no-public-exposure: a Traefik Middleware's forwardAuth (the local-k8s stack's ingress class)", () => {
    const middleware = (address: string, group = "traefik.io"): TestResource => ({
        type: `kubernetes:${group}/v1alpha1:Middleware`, name: "auth",
        props: { apiVersion: `${group}/v1alpha1`, kind: "Middleware", metadata: { name: "auth", namespace: NS }, spec: { forwardAuth: { address, trustForwardHeader: true } } },
    });
    const FIX = ", past every NetworkPolicy (the controller makes the request): the clients' credentials and orders leave the platform. Name a Service of the cluster " +
        "(http://<service>.<namespace>.svc:<port>/...), or, for an identity provider the operator has chosen, list its host in this policy's allowedExternalTargets.";
    const SENDS = "the headers of every request routed through it (their Authorization header and cookies)";

    it("rejects a forwardAuth.address outside the cluster or on the controller's loopback, and one (or errors.service) naming a datastore's or monitoring's Service", async () => {
        expect(await messages("ingress-no-external-forwarding", [middleware("https://auth.example.com/verify"), middleware("http://localhost:8080/api/rawdata", "traefik.containo.us")])).toEqual([
            `Middleware "auth" sets forwardAuth.address to a URL on auth.example.com, outside the cluster, so the controller sends it ${SENDS}${FIX}`,
            `Middleware "auth" sets forwardAuth.address to a URL on localhost, the controller's own pod (its status and configuration endpoints listen on its loopback), so the controller sends them ${SENDS}${FIX}`,
        ]);
        const toInternal = (label: string) => `Middleware "auth" sends the requests of the routers using it, their Authorization header and cookies included, to ${label}; ` +
            "datastores and monitoring stay internal (name the platform's own authentication service and error pages).";
        expect(await messages("no-public-exposure", [middleware("http://prometheus.ai-trading.svc:9090/api/v1/status/config")])).toEqual([toInternal("prometheus (by its forwardAuth.address)")]);
        // Its errors middleware fetches the error page with the client's request: a route to that Service, judged by name and by selector.
        const errors = edit(middleware("http://api-gateway.ai-trading.svc:3001/auth"), (p) => { p.spec.errors = { status: ["500-599"], service: { name: "grafana", port: 3000 }, query: "/{status}" }; });
        expect(await messages("no-public-exposure", [errors])).toEqual([toInternal("grafana (by its errors.service)")]);
        const reports = edit(service("reports", "service", 5432), (p) => { p.spec.selector = { "trading.io/workload": "postgres" }; });
        const viaReports = edit(errors, (p) => { p.spec.errors.service.name = "reports"; });
        expect((await messages("ingress-internal-backends", [...prodStack(), reports, viaReports])).map((m) => m.split(";")[0])).toEqual([
            "Middleware \"auth\" routes public traffic to Service \"reports\" (by its errors.service), which selects the pods of postgres",
        ]);
        // The platform's own service, an allowed identity provider: passes.
        const ok = middleware("http://api-gateway.ai-trading.svc:3001/auth");
        expect([...await messages("ingress-no-external-forwarding", [ok]), ...await messages("no-public-exposure", [ok])]).toEqual([]);
        const listing = { all: "mandatory" as const, "ingress-no-external-forwarding": { allowedExternalTargets: ["auth.example.com"] } };
        expect(await messages("ingress-no-external-forwarding", [middleware("https://auth.example.com/verify")], listing)).toEqual([]);
    });
});

describe("no-insecure-runtime-flags: an ingress-nginx access log format writing the clients' credentials", () => {
    const controller = (data: Record<string, string>): TestResource => ({
        type: "kubernetes:core/v1:ConfigMap", name: "ingress-nginx-controller",
        props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" }, data },
    });
    const FIX = "; log who and what without the secrets (ingress-nginx's default format, $remote_user, $request_id), and never a request's Authorization header, cookies or body.";

    it("rejects $http_authorization, cookies, $request_body and credential-named headers or arguments in log-format-upstream or log-format-stream", async () => {
        const found = await messages("no-insecure-runtime-flags", [controller({
            "log-format-upstream": "$remote_addr - $remote_user [$time_local] \"$request\" $status auth=\"$HTTP_AUTHORIZATION\" c=\"${http_cookie}\" s=$cookie_session body=$request_body k=$http_x_api_key t=$arg_token id=$request_id",
            "log-format-stream": "[$remote_addr] $protocol $status",
        })]);
        expect(found).toEqual([
            "ConfigMap \"ingress-nginx-controller\" sets log-format-upstream with $http_authorization, $http_cookie, $cookie_session, $request_body, $http_x_api_key, $arg_token, " +
            `which writes every client's credentials into the ingress controller's access log${FIX}`,
        ]);
        // The default-like format passes.
        expect(await messages("no-insecure-runtime-flags", [controller({ "log-format-upstream": "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent $request_id" })])).toEqual([]);
    });
});

describe("hand-made-endpoints: a special address spelt with leading zeros (read as decimal by the API server and kube-proxy)", () => {
    const slice = (addresses: string[]): TestResource => ({
        type: "kubernetes:discovery.k8s.io/v1:EndpointSlice", name: "ledger-endpointslice",
        props: {
            apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "ledger", namespace: NS, labels: { "kubernetes.io/service-name": "ledger-db" } },
            addressType: "IPv4", endpoints: [{ addresses }], ports: [{ port: 5432 }],
        },
    });
    const special = (field: string, address: string, what: string) =>
        `EndpointSlice "ledger" sets ${field} to ${address} (${what}): whatever connects through its Service (a pod, or the ingress controller, which proxies to endpoint addresses itself) ` +
        "reaches that address from its own node or pod, the node's cloud credentials and local ports included. Remove the address; give the Service a selector of the platform's pods.";

    it("rejects 0100.100.100.200 (Alibaba's metadata service) and 0224.000.000.251 (multicast); 010.20.0.15 passes as 10.20.0.15 does", async () => {
        expect(await messages("hand-made-endpoints", [slice(["0100.100.100.200", "0224.000.000.251", "010.20.0.15"])])).toEqual([
            special("endpoints[0].addresses[0]", "0100.100.100.200", "the cloud metadata address"),
            special("endpoints[0].addresses[1]", "0224.000.000.251", "multicast"),
        ]);
    });
});
