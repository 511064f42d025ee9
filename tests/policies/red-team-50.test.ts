/**
 * Session 50, red team round three: resources the pack passed that it should refuse, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 50".)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, NS, prodStack, statefulSet } from "./fixtures";
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
